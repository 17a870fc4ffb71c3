"""sightsound.speech.model_files: the one reader and writer of a speech model's metadata.json."""

from __future__ import annotations

import json

import pytest
from web_helpers import SPEECH_WORDS, save_speech_model

from sightsound import audio
from sightsound.data import speech_commands as sc
from sightsound.errors import ModelFormatError
from sightsound.speech import frontend, model_files, wav
from sightsound.training import speech as speech_training
from sightsound.web.models import ModelStore


def test_written_metadata_reads_back_everywhere(tmp_path):
    path = model_files.write_metadata(tmp_path, SPEECH_WORDS)
    doc = json.loads(path.read_text())
    assert doc["words"] == doc["wordLabels"] == SPEECH_WORDS and doc["frameSize"] == 232
    assert doc["tfjsSpeechCommandsVersion"] == "0.5.4" and doc["numFrames"] == 43
    assert model_files.folder_words(tmp_path) == SPEECH_WORDS
    assert speech_training.read_metadata(tmp_path) == tuple(SPEECH_WORDS)
    assert not list(tmp_path.glob(".*.tmp"))


def test_word_labels_come_first_and_bad_files_are_format_errors(tmp_path):
    (tmp_path / "metadata.json").write_text(json.dumps({"words": ["a"], "wordLabels": ["b", "c"]}))
    assert model_files.folder_words(tmp_path) == ["b", "c"]
    cases = {"[1, 2]": "JSON object", '{"frameSize": 232}': 'cannot find field "words"',
             '{"words": []}': "non-empty list", "{": "not valid JSON", "[" * 100_000: "not valid JSON",
             " " * (model_files.MAX_METADATA_BYTES + 1): "larger than"}
    for text, message in cases.items():
        (tmp_path / "metadata.json").write_text(text)
        with pytest.raises(ModelFormatError, match=message):
            model_files.folder_words(tmp_path, where="m/metadata.json")
    with pytest.raises(ModelFormatError, match="missing"):
        model_files.folder_words(tmp_path / "nothing")


def test_the_web_model_list_reads_words_through_model_files(tmp_path):
    save_speech_model(tmp_path / "speech")
    (tmp_path / "speech" / "metadata.json").write_text(json.dumps({"wordLabels": SPEECH_WORDS}))
    store = ModelStore(tmp_path)
    info = store.info("speech")
    assert info.kind == "speech" and info.labels == SPEECH_WORDS
    (tmp_path / "speech" / "metadata.json").write_text('{"words": "yes"}')
    with pytest.raises(ModelFormatError) as err:
        store.info("speech")
    assert str(err.value).startswith("speech/metadata.json: ") and str(tmp_path) not in str(err.value)
    assert [info.name for info in store.list() if not info.builtin] == []  # a broken model is left out


def test_the_special_words_are_defined_once():
    assert sc.BACKGROUND_NOISE is model_files.BACKGROUND_NOISE_TAG and sc.UNKNOWN is model_files.UNKNOWN_TAG
    assert model_files.NOISE_WORDS == ("_background_noise_", "_unknown_")


def test_sightsound_audio_re_exports_the_front_end_and_wav_io():
    for name in audio.__all__:
        home = frontend if hasattr(frontend, name) else wav
        assert getattr(audio, name) is getattr(home, name), name
