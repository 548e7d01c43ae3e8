#!/usr/bin/perl

# Story: the sidecar's state hash (<prefix><split>:sidecar) is whatever
# was last written to Redis: a sidecar of another version, a hand-written
# HSET, an attacker with write access.  canary-ctl's and the guard's
# scripts read the rollout's fields from it inside the EVAL of their
# write, and a rollback must land whatever it holds: the script never
# fails, and the receipt it writes is one the schema accepts.
#
# Hostile states: an empty stage name and empty release names (the schema
# wants at least one character), counts past 2^63 (Lua's %d made them
# -9223372036854775808), a stage name and a release that are no UTF-8
# with quotes, a newline and a backslash (the guard's cjson.encode copied
# the bytes as they were: no JSON), a release that is no JSON, a huge
# stages_log, times in the future and negative, a state key of the wrong
# type.  canary-ctl set-weight and rollback on each, then the guard trips
# on two splits whose states are hostile; every receipt validates.  A
# rollback by hand or the guard's trip during a gradual rollback (the
# sidecar's status rolling_back, or paused with walking 1) ends the
# rollback the sidecar counted already: rollbacks_triggered stays 1.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Encode ();
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;
use ReceiptSchema;
use RedisStory qw(:all);

my $schema = ReceiptSchema->load;

my $t = CanaryTest->new(name => 'receipts-hostile');
my $port = $t->port('http');
my $redis = '127.0.0.1:' . $t->redis_start;

sub r { $t->redis_cli(@_) }

my $HUGE = '9' x 30;
my $BAD = "st\xff\xfe\"age\n\\x\x01";

my %STATES = (
    empty => [ status => 'running', stage_name => '',
               release => '{"stable":"","canary":""}',
               stage_started => 1, stages_completed => $HUGE,
               rollout_started => 1, rollbacks => $HUGE ],
    bytes => [ status => 'running', stage_name => $BAD,
               release => qq({"stable":"v1\xff\\"\\n","canary":"\xc3\x28"}),
               stage_started => $HUGE,
               stages_completed => '18446744073709551616',
               rollout_started => '-5', rollbacks => '18446744073709551615',
               stages_log => 'x' x 20000 ],
    nojson => [ status => 'rolling_back', stage_name => '10_percent',
                release => '{"stable":', stage_started => '1e3',
                stages_completed => ' 3', rollout_started => '',
                rollbacks => '-1' ],
    deep => [ status => 'running', release => ('[' x 2000) . (']' x 2000),
              stages_completed => '2', rollbacks => '1' ],
);

# the receipts of a stream, as written
sub receipts {
    my ($split) = @_;
    my @lines = r('XRANGE', "canary:$split:receipts", '-', '+');
    # id, "receipt", text: every third line from the third
    return map { $lines[$_] } grep { $_ % 3 == 2 } 0 .. $#lines;
}

sub valid {
    my ($text, $what) = @_;

    my @err = $schema->validate($text);
    my $copy = $text;
    push @err, 'no UTF-8'
        unless eval { Encode::decode('UTF-8', $copy, Encode::FB_CROAK); 1 };
    ok !@err, "$what: the receipt conforms"
        or diag join("\n", @err) . "\n$text";
}

# ---- canary-ctl --------------------------------------------------------

for my $name (sort keys %STATES) {
    my $split = "ctl_$name";
    report_node($t, $split, 'web-1',
                record => node_record(interval_ms => 600000));
    r('HSET', "canary:$split:sidecar", @{$STATES{$name}});

    for my $args (['set-weight', $split, '5'],
                  ['rollback', $split, '--reason', 'hostile'])
    {
        my ($rc, $out, $err) = ctl_run($t, $redis, $args);
        is $rc, 0, "$name: canary-ctl @$args lands" or diag $out . $err;
    }

    my @rs = receipts($split);
    is scalar(@rs), 2, "$name: two receipts";
    valid($_, "$name: canary-ctl") for @rs;
}

# a state key that is no hash: the fields are null, the write lands
report_node($t, 'ctl_string', 'web-1',
            record => node_record(interval_ms => 600000));
r('SET', 'canary:ctl_string:sidecar', 'x');
my ($rc, $out, $err) = ctl_run($t, $redis, ['rollback', 'ctl_string',
                                            '--reason', 'x']);
is $rc, 0, 'a state of the wrong type: canary-ctl rollback lands'
    or diag $out . $err;
valid($_, 'wrong type: canary-ctl') for receipts('ctl_string');

# ---- a gradual rollback under way: ending it is the same rollback ------

my %WALK = (
    walk => [ status => 'rolling_back', stage_name => 'b', rollbacks => 1,
              walking => 1, stages_completed => 1 ],
    paused_walk => [ status => 'paused', stage_name => 'b', rollbacks => 1,
                     walking => 1, stages_completed => 1 ],
    running => [ status => 'running', stage_name => 'b', rollbacks => 0,
                 walking => 0, stages_completed => 1 ],
);

for my $name (sort keys %WALK) {
    my $split = "ctl_$name";
    report_node($t, $split, 'web-1',
                record => node_record(interval_ms => 600000));
    r('HSET', "canary:$split:sidecar", @{$WALK{$name}});

    my ($rc, $out, $err) = ctl_run($t, $redis, ['rollback', $split,
                                                '--reason', 'ops']);
    is $rc, 0, "$name: canary-ctl rollback" or diag $out . $err;
    my ($text) = receipts($split);
    valid($text, "$name: canary-ctl");
    my %st = @{$WALK{$name}};
    is decode_json($text)->{rollbacks_triggered}, 1,
        "$name: rollbacks_triggered 1 (the sidecar's count: $st{rollbacks})";
}

# ---- the guard ---------------------------------------------------------

my @splits = qw(g_empty g_bytes g_walk);
my $guard = 'guard error_rate=10 min_requests=20 window=10s';

$t->write_conf(<<"EOF");
    canary_zone canary 1m;
    canary_redis $redis interval=200ms timeout=300ms;

${\ split_block('g_empty', 'app_stable', 'app_canary', 50, $guard) }
${\ split_block('g_bytes', 'app_stable', 'app_canary', 50, $guard) }
${\ split_block('g_walk', 'app_stable', 'app_canary', 50, $guard) }
${\ fault_origins($t) }
${\ front_server($t, locations => [ ['/e/', 'g_empty'], ['/b/', 'g_bytes'],
                                    ['/w/', 'g_walk'] ]) }
EOF

r('HSET', 'canary:g_empty:sidecar', @{$STATES{empty}});
r('HSET', 'canary:g_bytes:sidecar', @{$STATES{bytes}});
r('HSET', 'canary:g_walk:sidecar', @{$WALK{walk}});

$t->start;
fault($t, 1);

for my $split (@splits) {
    my $path = { g_empty => '/e/', g_bytes => '/b/',
                 g_walk => '/w/' }->{$split};
    my $i = 0;

    my $tripped = wait_until(20, sub {
        $t->get($port, $path, { 'X-Tenant-Id' => 't' . $i++ }) for 1 .. 20;
        return (r('HGET', "canary:$split", 'state') // '') eq 'guard_tripped';
    });
    ok defined $tripped, "$split: the guard trips and writes to Redis";

    my @rs = grep { /"guard_tripped"/ } receipts($split);
    is scalar(@rs), 1, "$split: the guard's receipt";
    valid($_, "$split: the guard") for @rs;
}

# what a hostile state still gives: counts it cannot read are null
my ($g) = grep { /"guard_tripped"/ } receipts('g_bytes');
my $d = eval { JSON::PP->new->utf8->decode($g) };
ok $d, 'the guard\'s receipt decodes as UTF-8 JSON';
$d //= {};
ok exists $d->{stages_completed} && !defined $d->{stages_completed},
    'a count past 2^63 is null, not negative';
is $d->{release}{stable}, "v1\x{ff}\"\n",
    'a release byte past ASCII: \u00XX, the byte\'s code point '
    . '(as canary-ctl writes a byte that is no UTF-8)';

my ($w) = grep { /"guard_tripped"/ } receipts('g_walk');
is eval { decode_json($w)->{rollbacks_triggered} }, 1,
    'the guard ends a gradual rollback under way: still one rollback';

$t->stop;

done_testing;
