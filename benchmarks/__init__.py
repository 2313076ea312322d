"""The course's benchmark suite: scripts, not tests, run with ``python -m benchmarks``.

Each module measures one thing and writes ``benchmarks/results/<name>.json``:

* :mod:`benchmarks.cells`: recurrent layers, from scratch, fused, compiled and torch.nn (cuDNN);
* :mod:`benchmarks.batching`: bucketing against random batches, packed against padded inputs;
* :mod:`benchmarks.char_lm`: a character-level LSTM language model on tiny-shakespeare;
* :mod:`benchmarks.g2p`: grapheme-to-phoneme conversion with attention (Chapter 7);
* :mod:`benchmarks.language_models`: perplexities on the course corpora against the entropy floor;
* :mod:`benchmarks.ngram_speed`: ``course_lib.ngram`` against NLTK.

``benchmarks/autograde_throughput.py`` (class autograding) is a separate script whose JSON
lies in the same folder. See ``benchmarks/__main__.py`` for the command line.
"""
