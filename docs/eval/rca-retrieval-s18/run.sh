#!/bin/bash
cd /work/wt-store2; export PYTHONPATH=$PWD HF_HUB_OFFLINE=1
R=/work/main/.venv/bin/ragserve; O=/work/cache/s18/rca/out
for v in use:universal-sentence-encoder-multilingual-3:0.25 minilm:all-MiniLM-L6-v2:0.45; do
  IFS=: read tag model thr <<< "$v"; D=/work/cache/s18/rca/data-$tag
  for spec in sample: openshift:25 openshift-paraphrased:20 openshift: openshift-paraphrased:; do
    set_=${spec%%:*}; lim=${spec#*:}; n=$set_${lim:+-$lim}
    RAGSERVE_EMBEDDING__MODEL=$model RAGSERVE_RCA__MIN_DENSE_SCORE=$thr nice -n 19 $R --data-dir $D eval rca --retrieval-only \
      --set $set_ ${lim:+--limit $lim} --out $O/$tag-$n > $O/$tag-$n.log 2>&1 || echo "FAIL $tag $n"
  done
done
