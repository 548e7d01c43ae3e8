#!/usr/bin/perl

# Story: the guard's receipt says which of its limits tripped.  Three
# splits with Redis, each with one guard limit: "app" error_rate (the
# canary answers 500), "slow" latency_p99=100ms (its canary answers after
# 300ms), "dead" upstream_errors=5 (its canary's port is closed).  Each
# trips and writes its guard_tripped receipt: failed_checks names the
# limit (guard_error_rate, guard_latency_p99, guard_upstream_errors; it
# said guard_error_rate for all three), and every receipt conforms to the
# schema.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use CanaryTest;
use ReceiptSchema;
use RedisStory qw(:all);
use Traffic;

my $t = CanaryTest->new(name => 'guard-receipt-checks');
my $port = $t->port('http');
my $p_slow = $t->port('slow');
my $p_dead = $t->port('dead');
my $redis = '127.0.0.1:' . $t->redis_start;

Traffic::slow_origin($t, $p_slow, 300, "canary slow_canary\n");
$t->allow_log(qr/connect\(\) failed \(111: Connection refused\)/);

$t->write_conf(<<"EOF2", workers => 1);
    canary_zone canary 1m;
    canary_redis $redis interval=200ms timeout=300ms;

${\ split_block('app', 'app_stable', 'app_canary', 50,
                'guard  error_rate=10 min_requests=20 window=10s') }
${\ split_block('slow', 'app_stable', 'slow_canary', 50,
                'guard  latency_p99=100ms min_requests=10 window=10s') }
${\ split_block('dead', 'app_stable', 'dead_canary', 50,
                'guard  upstream_errors=5 min_requests=5') }
${\ fault_origins($t, upstreams => { slow_canary => $p_slow,
                                     dead_canary => $p_dead }) }
${\ front_server($t, locations => [ ['/', 'app'], ['/slow/', 'slow'],
                                    ['/dead/', 'dead'] ]) }
EOF2

$t->start;
fault($t, 1);

my $schema = ReceiptSchema->load;
my %limit = (app => 'guard_error_rate', slow => 'guard_latency_p99',
             dead => 'guard_upstream_errors');

for my $split (sort keys %limit) {
    my $path = $split eq 'app' ? '/' : "/$split/";
    my $i = 0;

    my $tripped = wait_until(30, sub {
        $t->get($port, $path, { 'X-Tenant-Id' => 't' . $i++ }) for 1 .. 10;
        return ($t->redis_cli('HGET', "canary:$split", 'state') // '')
               eq 'guard_tripped';
    });
    ok defined $tripped, "$split: the guard trips and writes to Redis";

    my @l = $t->redis_cli('XRANGE', "canary:$split:receipts", '-', '+');
    my @texts = grep { /"guard_tripped"/ } map { $l[$_] }
                grep { $_ % 3 == 2 } 0 .. $#l;
    is scalar(@texts), 1, "$split: one guard_tripped receipt";

    my $r = eval { decode_json($texts[0] // '') } // {};
    is_deeply $r->{failed_checks}, [$limit{$split}],
        "$split: failed_checks [$limit{$split}]"
        or diag $r->{reason};

    my @err = $schema->validate($texts[0] // '{}');
    ok !@err, "$split: the receipt conforms" or diag join "\n", @err;
}

$t->stop;

done_testing;
