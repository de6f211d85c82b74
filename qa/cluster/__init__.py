"""Ray: embedding passages on a cluster and serving from replicas (``pip install 'ludao[ray]'``).

``ludao index --ray`` hands only the passages that need new vectors to a Ray Data pipeline of
encoder actors (:mod:`.embedding`) and writes the result where a local build would (FAISS folder
or Milvus), so everything else (incremental updates, manifests, access labels) is unchanged.
``ludao serve --ray --replicas N`` runs the same app as ``ludao serve`` in N Ray Serve replicas
(:mod:`.serving`), with browser sessions kept on one replica (:mod:`.affinity`).

Importing this package imports no Ray: :func:`.connect.connect` does, when a command asks for it.
"""

from __future__ import annotations

from .connect import ClusterUnavailableError, connect

__all__ = ["ClusterUnavailableError", "connect"]
