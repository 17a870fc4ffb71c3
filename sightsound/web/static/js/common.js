// Helpers shared by the pages: the sentences people see for each error, JSON requests, model lists, pixels.

/**
 * What the pages say when something goes wrong, one short sentence per code. The server answers errors with
 * {"error": detail, "code": code} (sightsound/web/errors.py); the detail, written for developers, stays in the
 * message's tooltip. Codes the pages raise themselves (network, microphone_denied, unknown_model...) are here
 * too, so that every sentence a person reads has this one home. A function gets the error's fields.
 */
export const MESSAGES = {
  network: "Cannot reach the server: is sightsound serve still running?",
  internal: "Something went wrong on the server; its log says what.",
  server_busy: "The server is busy; try again in a moment.",
  not_an_image: (e) => `This file is not an image we can read (${e.formats}).`,
  image_too_large: "This image is too large; try a smaller one.",
  too_large: "This file is too large; try a smaller one.",
  no_digit: "No digit found in this picture.",
  not_mnist: "This model does not read 28×28 digit images; choose an MNIST model.",
  model_not_found: "This model is no longer on the server; reload the page for the current list.",
  unknown_model: (e) => `There is no model named “${e.wanted}”` +
    (e.shown ? `; showing ${e.shown} instead.` : "."),
  no_model: "No digit model yet: train one on the Train page.",
  model_broken: "This model's files cannot be read; train it again or delete it.",
  bad_model_name: "Model names use only letters, digits, “.”, “_” and “-”.",
  data_missing: "The server cannot find the MNIST data (see the README's data section).",
  name_taken: "A model with this name exists already; choose another name.",
  name_reserved: "That name belongs to the built-in speech model; choose another name.",
  too_many_jobs: "Other training runs are using the server; wait for one to finish or stop it.",
  job_not_found: "That training run is no longer on the server.",
  connection_lost: "Lost the connection to the training run; reload the page to follow it again.",
  training_failed: (e) => `Training failed: ${e.detail}`,
  invalid_request: "Some settings are out of range; check them and try again.",
  builtin_model: "The built-in speech model ships with sightsound and cannot be deleted.",
  delete_failed: "The server could not delete this model's folder; its log says why.",
  no_speech_model: (e) => `No speech model in ${e.models_dir}/: train one with “sightsound speech train”, or ` +
    (e.builtin_speech ? "reinstall sightsound for the built-in one." : "serve without --no-builtin-speech."),
  not_speech: "This model does not recognise speech; choose a speech model.",
  server_full: "Too many people are listening on this server right now; try again shortly.",
  recognizer_failed: "The recognizer stopped; press Start to listen again.",
  bad_stream: "The server refused the audio stream; reload the page and try again.",
  microphone_denied: "The microphone is blocked: allow it for this site, then press Start again.",
  camera_denied: "The camera is blocked or missing: allow it for this site, then start the webcam again.",
  no_media_api: "This browser gives no microphone or camera here: open the page at http://127.0.0.1 or over https.",
  foreign_host: "The server refused this page: open it through the server's own address.",
  cross_origin: "The server refused this page: open it through the server's own address.",
  not_found: "The server has nothing at this address.",
};

/** An Error with a code from MESSAGES (and fields its sentence may use). */
export function coded(code, fields = {}) {
  const error = new Error(code);
  error.code = code;
  Object.assign(error, fields);
  return error;
}

/** The sentence for an error: its code's entry in MESSAGES (or in `overrides`), else its own message. */
export function explain(error, overrides = {}) {
  const entry = overrides[error.code] ?? MESSAGES[error.code];
  if (entry === undefined) return error.detail || error.message;
  return typeof entry === "function" ? entry(error) : entry;
}

/** Show a message in an element; kind "error" colours it; `detail` becomes its tooltip. */
export function say(element, message, kind = "", detail = "") {
  element.textContent = message;
  element.className = kind;
  if (detail && detail !== message) element.title = detail;
  else element.removeAttribute("title");
}

/** Show an error's sentence in an element (the server's detail as its tooltip). */
export function sayError(element, error, overrides = {}) {
  say(element, explain(error, overrides), "error", error.detail);
}

/** fetch() that returns parsed JSON, or throws an Error with the server's code, detail and fields. */
export async function fetchJSON(url, options = {}) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (err) {
    throw coded("network", { detail: err.message });
  }
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) {
    const fields = body && typeof body === "object" ? body : {};
    const error = coded(fields.code || (response.status >= 500 ? "internal" : `http_${response.status}`),
      { ...fields, detail: fields.error || `HTTP ${response.status}`, status: response.status, body });
    throw error;
  }
  return body;
}

let infoPromise = null;
/** GET /api/info, once per page: the server's facts (models folder, upload formats, built-in speech model). */
export function serverInfo() {
  infoPromise = infoPromise || fetchJSON("/api/info");
  return infoPromise;
}

/** Fill a <select> with the models of one kind ("mnist", "speech"): ?model= when it names one, else the
 * server's default for that kind. An unknown ?model= is said in `notice`; no model at all leaves the select
 * disabled with a placeholder. Returns the usable models. */
export async function fillModelSelect(select, kind, notice = null) {
  const wanted = new URLSearchParams(location.search).get("model");
  const { models, defaults } = await fetchJSON("/api/models");
  const usable = models.filter((m) => m.kind === kind);
  select.replaceChildren(...usable.map((m) => {
    const notes = [m.builtin && "shipped with sightsound", m.stopped && "stopped early",
      m.test_accuracy != null && `test acc ${(m.test_accuracy * 100).toFixed(1)}%`].filter(Boolean);
    return new Option(notes.length ? `${m.name} (${notes.join(", ")})` : m.name, m.name);
  }));
  select.disabled = !usable.length;
  if (!usable.length) select.append(new Option("no model yet", ""));
  if (usable.some((m) => m.name === wanted)) select.value = wanted;
  else if (defaults[kind]) select.value = defaults[kind];
  if (notice && wanted && select.value !== wanted) {
    say(notice, explain(coded("unknown_model", { wanted, shown: select.value })), "notice");
  }
  return usable;
}

/** Draw grayscale bytes (base64, row-major, 0 = black) into a canvas of the same size. */
export function drawGray(canvas, base64Pixels, width, height) {
  const bytes = Uint8Array.from(atob(base64Pixels), (c) => c.charCodeAt(0));
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    image.data[4 * i] = image.data[4 * i + 1] = image.data[4 * i + 2] = bytes[i];
    image.data[4 * i + 3] = 255;
  }
  context.putImageData(image, 0, 0);
}

/** The Chart.js constructor loaded by the page's <script src="/vendor/chart.umd.min.js">. */
export function chartLibrary() {
  if (!window.Chart) throw new Error("Chart.js did not load from /vendor/chart.umd.min.js");
  return window.Chart;
}
