#!/bin/bash
D=$(dirname $0); P=$D/proto_tmp.py
run() { tag=$1; shift; python3 $P --tag "$tag" --every 100 "$@" > $OUT/$tag.log 2>&1; }
S=${STEPS:-800}
run n1p1s1 --noise 1 --pairs 1 --seed 1 --steps $S &
run n2p1 --noise 2 --pairs 1 --steps $S &
run n4p1 --noise 4 --pairs 1 --steps $S &
run n8p1 --noise 8 --pairs 1 --steps $S &
run n1p2d3 --noise 1 --pairs 2 --depth 3 --steps 1600 &
run n1p3d3 --noise 1 --pairs 3 --depth 3 --steps 1600 &
run n1p2l --noise 1 --pairs 2 --steps 1600 &
run n1p1b8 --noise 1 --pairs 1 --batch 8 --steps $S &
run n1p1n1024 --noise 1 --pairs 1 --n 1024 --kq 64 --kkv 64 --kff 64 --steps $S &
run n1p1k16 --noise 1 --pairs 1 --kq 16 --kkv 16 --kff 16 --steps $S &
run n1p1d32 --noise 1 --pairs 1 --dim 32 --dh 16 --steps $S &
run n1p1e1 --noise 1 --pairs 1 --eps 1 --steps $S &
wait
for f in $OUT/*.log; do echo; cat $f | awk 'NR%2==1'; done
