#!/usr/bin/perl

# Story: counters are updated with atomic adds by every worker at once,
# never under a lock, and still exact: 4 workers under 8 parallel
# clients, 200,000 requests, and the totals equal the requests sent,
# per variant exactly what the bucket formula predicts.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Time::HiRes qw(time);
use CanaryTest;
use Traffic;

my $N = $ENV{CANARY_CONCURRENCY_REQUESTS} || 200_000;
my $TENANTS = 1000;

my $t = CanaryTest->new;
my $port = $t->port('http');

$t->write_conf(<<"EOF", workers => 4);
    canary_zone canary 4m;

    canary_split app { stable stable_up; canary canary_up; weight 30; }

    ${\ $t->origins }

    server {
        listen 127.0.0.1:$port reuseport;

        location / {
            canary app;
            proxy_pass http://\$canary_upstream;
        }

        location = /canary_status { canary_status; }
    }
EOF
$t->start;

my $t0 = time;
my $load = Traffic->run(port => $port, requests => $N, clients => 8,
                        pipeline => 50, tenants => $TENANTS);
my $took = time - $t0;
note(sprintf "%d responses, %d failed, %d resent (%.1fs, %.0f "
     . "requests/s)", $load->{responses}, $load->{failed}, $load->{resent},
     $took, $N / $took);

is($load->{responses}, $N, "all $N requests answered");
is($load->{failed}, 0, 'none failed');

# request i is tenant t<i % 1000>: the formula says how many are canary
my %canary = map { ("t$_" => CanaryTest::is_canary('', "t$_", 30)) }
             0 .. $TENANTS - 1;
my $expect = 0;
$expect += $canary{'t' . ($_ % $TENANTS)} for 0 .. $N - 1;

my $v;
for (1 .. 40) {
    $v = decode_json($t->get($port, '/canary_status')->{content})
         ->{splits}{app}{variants};
    last if $v->{stable}{requests} + $v->{canary}{requests} >= $N;
    select undef, undef, undef, 0.05;
}

is($v->{stable}{requests} + $v->{canary}{requests}, $N,
   'stable + canary requests equal the requests sent');
is($v->{canary}{requests}, $expect,
   "canary counted exactly $expect, as the formula puts them");
is($v->{canary}{responses}{'2xx'}, $expect, 'every canary 2xx counted');
is($v->{stable}{responses}{'2xx'}, $N - $expect, 'every stable 2xx counted');

for my $side (qw(stable canary)) {
    my $sum = 0;
    $sum += $_ for @{$v->{$side}{latency}{counts}};
    is($sum, $v->{$side}{requests}, "$side histogram holds every request");
}

$t->stop;

done_testing;
