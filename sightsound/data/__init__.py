"""Datasets: download helpers, MNIST, Speech Commands and the offline speech corpus."""
