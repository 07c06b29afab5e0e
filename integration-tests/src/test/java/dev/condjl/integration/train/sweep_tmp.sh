#!/bin/bash
D=$(dirname $0); P=$D/proto_tmp.py
run() { tag=$1; shift; python3 $P --tag "$tag" --every 100 "$@" > $OUT/$tag.log 2>&1; }
S=${STEPS:-800}
run n1p1 --noise 1 --pairs 1 --steps $S &
run n1p2 --noise 1 --pairs 2 --steps $S &
run n1p4 --noise 1 --pairs 4 --steps $S &
run n1p2e1 --noise 1 --pairs 2 --eps 1 --steps $S &
run n1p2nopos --noise 1 --pairs 2 --pos 0 --steps $S &
run n1p2nopose1 --noise 1 --pairs 2 --pos 0 --eps 1 --steps $S &
run n4p2 --noise 4 --pairs 2 --steps $S &
run n4p2e1 --noise 4 --pairs 2 --eps 1 --steps $S &
run n1p4e1 --noise 1 --pairs 4 --eps 1 --steps $S &
run n1p2k16 --noise 1 --pairs 2 --kq 16 --kkv 16 --kff 16 --steps $S &
run n1p2cos --noise 1 --pairs 2 --cos 1 --steps $S &
run n1p4s1600 --noise 1 --pairs 4 --steps 1600 &
wait
for f in $OUT/*.log; do tail -n 2 $f; done
