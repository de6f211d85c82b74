"""One model built at a time in a process: transformers' construction is not thread-safe.

Its lazy top-level module is not either: ``from transformers import AutoModel`` in one thread
while another thread's first ``from transformers import ...`` runs can fail with "cannot import
name" (seen in CI when the reader loaded beside the embedding model). So every transformers
import and call on a load path happens under this lock too.

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
"""Held while transformers is imported and a model object constructed (not while its weights
are read)."""
