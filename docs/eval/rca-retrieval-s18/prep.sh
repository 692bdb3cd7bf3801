#!/bin/bash
# data for `ragserve eval rca --retrieval-only`: USE (default) and MiniLM (the embedder of docs/rca.md's figures)
cd /work/wt-store2; export PYTHONPATH=$PWD HF_HUB_OFFLINE=1
R=/work/main/.venv/bin/ragserve
for v in use:universal-sentence-encoder-multilingual-3 minilm:all-MiniLM-L6-v2; do
  tag=${v%%:*}; model=${v#*:}; D=/work/cache/s18/rca/data-$tag
  RAGSERVE_EMBEDDING__MODEL=$model nice -n 19 $R --data-dir $D ingest deploy/sample_corpus -c default 2>&1 | tail -1
  RAGSERVE_EMBEDDING__MODEL=$model nice -n 19 $R --data-dir $D ingest ../shared/data/runbooks-openshift -c openshift --include '*.md' 2>&1 | tail -1
done
