#!/usr/bin/perl

# Story: a canary 50 ms slower than stable must show it.  The canary's
# p50, p95 and p99 (request time and upstream time, cumulative and
# window) are the midpoints of the buckets that hold those ranks, at or
# just under 50 ms (the bucket error) and never far above, while stable
# stays near zero; the Prometheus histogram puts the same requests under
# the same bounds.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use CanaryTest;
use Traffic;

my $t = CanaryTest->new;
my $port = $t->port('http');
my $st = $t->port('stable');
my $slow = $t->port('slow');

Traffic::slow_origin($t, $slow, 50, "canary\n");

$t->write_conf(<<"EOF", workers => 2);
    canary_zone canary 4m;

    upstream st { server 127.0.0.1:$st; }
    upstream cn { server 127.0.0.1:$slow; keepalive 16; }

    canary_split app { stable st; canary cn; weight 50; }

    server {
        listen 127.0.0.1:$st;
        location / { return 200 "stable\\n"; }
    }

    server {
        listen 127.0.0.1:$port;

        location / {
            canary app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://\$canary_upstream;
        }

        location = /canary_status { canary_status; }
    }
EOF
$t->start;

# wait for the slow origin to listen
for (1 .. 50) {
    last if IO::Socket::INET->new(PeerAddr => "127.0.0.1:$slow");
    select undef, undef, undef, 0.1;
}

my @reqs = map { { path => '/', headers => ['X-Tenant-Id' => "t$_"] } }
           1 .. 400;
my $res = $t->request_many($port, \@reqs, clients => 8, batch => 1);

is(scalar(grep { $_->{status} == 200 } @$res), 400, 'all 400 answered');

my $v;
for (1 .. 40) {
    $v = decode_json($t->get($port, '/canary_status')->{content})
         ->{splits}{app}{variants};
    last if $v->{stable}{requests} + $v->{canary}{requests} == 400;
    select undef, undef, undef, 0.05;
}

my ($c, $s) = ($v->{canary}, $v->{stable});
note(sprintf "canary p50 %.3f p95 %.3f p99 %.3f ms over %d; "
             . "stable p50 %.3f p99 %.3f ms over %d",
     @{$c->{latency}}{qw(p50_ms p95_ms p99_ms)}, $c->{requests},
     @{$s->{latency}}{qw(p50_ms p99_ms)}, $s->{requests});

ok($c->{requests} > 100 && $s->{requests} > 100, 'both sides had traffic');

# The quantile is the midpoint of the bucket that holds rank
# ceil(q n) of the histogram served beside it (README), checked exactly
# (CanaryTest::quantile), whatever the machine's timing.

# nginx times requests in whole milliseconds: 50 ms of sleep is at least
# 50, and the bucket midpoint at least 3.2% under it (48.4 ms).  Above,
# a generous bound that a wrong unit or a wrong bucket breaks but a busy
# machine (8 clients, ASan) does not: the tight figures are make
# bench's.
for my $h ([ 'request time', $c->{latency} ],
           [ 'upstream time', $c->{upstream_latency} ],
           [ 'window', $c->{window} ])
{
    my ($what, $l) = @$h;

    for my $q ([p50 => 0.5], [p95 => 0.95], [p99 => 0.99]) {
        my ($p, $f) = @$q;
        my $want = CanaryTest::quantile($l->{counts},
                                        $c->{latency}{le_ms}, $f);

        ok(defined $want && abs($l->{"${p}_ms"} - $want) < 0.0015,
           "canary $what $p $l->{\"${p}_ms\"} ms is the midpoint of the "
           . "bucket of rank ceil($f n): " . ($want // 'none'));
    }

    cmp_ok($l->{p50_ms}, '>=', 50 * 0.968, "canary $what p50 >= 48.4 ms");
    cmp_ok($l->{p50_ms}, '<=', 75, "canary $what p50 <= 75 ms");
    cmp_ok($l->{p95_ms}, '<=', 100, "canary $what p95 <= 100 ms");
    cmp_ok($l->{p99_ms}, '<=', 150, "canary $what p99 <= 150 ms");
}

cmp_ok($s->{latency}{p99_ms}, '<', 40,
       'stable p99 stays well under the canary\'s 50 ms');
cmp_ok($s->{latency}{p50_ms}, '<', 10, 'stable p50 stays near zero');

# the mean from sum and count agrees
my $mean = $c->{latency}{sum_ms} / $c->{latency}{count};
cmp_ok($mean, '>=', 50, "canary mean $mean ms >= 50");
cmp_ok($mean, '<', 100, "canary mean $mean ms < 100");

# the bucket that holds 50 ms: its bounds surround 50 ms within 6.25%
my $le = $c->{latency}{le_ms};
my $counts = $c->{latency}{counts};
my ($i) = grep { $counts->[$_] } reverse 0 .. $#$counts;
ok(defined $i, 'the slowest non-empty bucket exists');
my $lo = $i ? $le->[$i - 1] : 0;
# (the bounds are printed in ms with decimals: 1e-9 for their rounding,
# a bucket of exactly 6.25% came out 0.0625000000000001)
cmp_ok(($le->[$i] - $lo) / $lo, '<=', 0.0625 + 1e-9, "bucket [$lo, "
       . "$le->[$i]) is at most 6.25% wide");

# Prometheus: the +Inf bucket and _count equal the requests; the
# cumulative count at 0.065536 s (2^16 us) covers the 50 ms requests
my $prom = $t->get($port, '/canary_status?format=prometheus')->{content};
my ($inf) = $prom =~ /^canary_request_duration_seconds_bucket\{split="app",
                       variant="canary",le="\+Inf"\}\ (\d+)$/xm;
is($inf, $c->{requests}, 'Prometheus +Inf bucket equals the requests');
my ($under) = $prom =~ /^canary_request_duration_seconds_bucket\{split="app",
                        variant="canary",le="0\.040960"\}\ (\d+)$/xm;
is($under, 0, 'no canary request under 40.96 ms');

$t->stop;

done_testing;
