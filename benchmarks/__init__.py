"""coursekit's benchmark suite: `python -m benchmarks.run` (see docs/performance.md).

One module per section: loops (fit vs plain loop vs HF Trainer), caching (frozen features),
strategies (cost per fine-tuning strategy), datapath (DataLoader vs in-memory batches), course
(every notebook, timed), gpu (AMP, channels_last, compile, MFU); `report` renders the JSON.
"""
