"""One model built at a time in a process: transformers' construction is not thread-safe.

``from_pretrained`` and ``no_init_weights`` patch process-wide state while a model is built
(``torch.nn.init``'s functions, the default dtype), so two threads building models at once can
each see the other's patch undone: weights initialised that should not be, or in the wrong
dtype. ``ludao serve`` loads the reader in a thread while the embedding model and the index load
(issue #14, cold start); everything else of the two loads (reading weights, the tokenizers,
packing the lean layers) still overlaps. It lives in ``embeddings`` because both the encoder and
the reader (``qa.readers``) build transformers models, and ``embeddings`` may not import ``qa``.
"""

from __future__ import annotations

import threading

MODEL_CONSTRUCTION = threading.RLock()
"""Held while a transformers model object is constructed (not while its weights are read)."""
