# bench/results/results.png from the data files bench/run writes:
#   gnuplot -e "dir='DATA_DIR'; out='results.png'; have='tcpr'" bench/plot.gp
# have: the sections with data (t throughput, c callgrind, p propagation,
# r rollback).  Files:
#   throughput.dat: index "label" rps min max p50_us p99_us cpu_us
#   callgrind.dat:  index "label" ir_per_request
#   propagation-canary-ctl.dat, propagation-direct.dat: ms fraction (sorted)
#   rollback.dat:   0|1 (guard|sidecar) seconds

set terminal pngcairo size 1500,950 font "sans,10" noenhanced
set output out

set multiplot layout 2,3 title "ngx_http_canary_module benchmarks (bench/results/results.md)"

set style fill solid 0.6 border -1
set boxwidth 0.6
set grid ytics
set xtics rotate by -30 nomirror
set key off

not_run(t) = sprintf("set title '%s'; unset xtics; unset ytics; set label 9 'not run' at graph 0.45, graph 0.5; set xrange [0:1]; set yrange [0:1]", t)

if (strstrt(have, "t")) {
    set title "Throughput (req/s, median, min-max over rounds)"
    set yrange [0:*]
    plot dir.'/throughput.dat' using 1:3:xtic(2) with boxes lc rgb "#4477aa", \
         '' using 1:3:4:5 with yerrorbars lc rgb "black" pt 0

    set title "Latency (us, median over rounds, log scale)"
    set key top left
    set logscale y
    set yrange [100:*]
    set boxwidth 0.35
    plot dir.'/throughput.dat' using ($1-0.18):6 with boxes lc rgb "#66ccee" title "p50", \
         '' using ($1+0.18):7:xtic(2) with boxes lc rgb "#ee6677" title "p99"
    set key off
    unset logscale y
    set yrange [0:*]
    set boxwidth 0.6

    set title "Proxy worker CPU per request (us, median)"
    plot dir.'/throughput.dat' using 1:8:xtic(2) with boxes lc rgb "#228833"
} else {
    do for [t in "Throughput Latency CPU/request"] {
        eval not_run(t)
        plot NaN
        unset label 9
        set xtics; set ytics
        set xrange [*:*]; set yrange [*:*]
    }
}

if (strstrt(have, "c")) {
    set title "Instructions per request (callgrind Ir)"
    set yrange [0:*]
    plot dir.'/callgrind.dat' using 1:3:xtic(2) with boxes lc rgb "#aa3377"
} else {
    eval not_run("Instructions per request")
    plot NaN
    unset label 9
    set xtics; set ytics
}

set xtics norotate
set xrange [*:*]
set yrange [*:*]

if (strstrt(have, "p")) {
    set title "Weight propagation to all 8 workers (CDF)"
    set key bottom right
    set xlabel "ms from the start of the write"
    set ylabel "fraction of writes"
    set yrange [0:1.02]
    set xrange [0:*]
    set arrow 1 from 50, graph 0 to 50, graph 1 nohead dt 2 lc rgb "red"
    set label 1 "target p99 50 ms" at 50, graph 0.5 offset 0.5,0 tc rgb "red"
    plot dir.'/propagation-canary-ctl.dat' using 1:2 with steps lw 2 lc rgb "#4477aa" title "canary-ctl set-weight", \
         dir.'/propagation-direct.dat' using 1:2 with steps lw 2 lc rgb "#228833" title "direct write (pipeline)"
    set key off
    unset arrow 1
    unset label 1
    unset xlabel
    unset ylabel
} else {
    eval not_run("Weight propagation")
    plot NaN
    unset label 9
    set xtics; set ytics
}

if (strstrt(have, "r")) {
    set title "Rollback: last canary response after the fault (s, each run)"
    set xrange [-0.5:1.5]
    set logscale y
    set yrange [0.01:20]
    set xtics ("guard" 0, "sidecar" 1)
    set arrow 2 from -0.3, 1 to 0.3, 1 nohead dt 2 lc rgb "red"
    set arrow 3 from 0.7, 10 to 1.3, 10 nohead dt 2 lc rgb "red"
    plot dir.'/rollback.dat' using 1:2 with points pt 7 ps 1.5 lc rgb "#ee6677"
} else {
    eval not_run("Rollback")
    plot NaN
}

unset multiplot
