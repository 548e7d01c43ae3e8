#!/usr/bin/perl

# Story: every nginx reports itself to Redis.  The syncing worker of
# nginx A (node=web-a, interval 250 ms) writes, every interval, one
# record per split, canary:app:node:web-a, and scores web-a in
# canary:app:nodes with the Redis time its record expires; its instance
# is the master's start and pid, the same in every worker and after a
# reload.  Under traffic on both sides the record's counters, once the
# traffic stops, are /canary_status's, and its generation, weight and
# guard state follow another nginx's guard trip and canary-ctl's reset
# and set-weight.
#
# The cost, measured with the traffic on both sides: the Redis commands
# nginx A sends in whole rounds (MONITOR, the script's own calls left
# out), at most 3 an interval (the split's read, the subscriber's probe,
# the report), and the bytes Redis receives (INFO stats) and the record's
# size, at most 8 KB.
#
# nginx B (two splits, node=web-b) has a record for each split; nginx C
# starts with node=web-b too: the two log that two nginx report as node
# web-b, with both instances.  A reloaded nginx stays live; a stopped
# one removes its record and its member at once (its goodbye); a killed
# one's record expires within 3 intervals and its member stays, silent.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;
use RedisStory qw(:all);
use Traffic;

my $INTERVAL = 0.25;
my $TTL_MS = 3 * $INTERVAL * 1000;

my $ta = CanaryTest->new(name => 'nginx A');
my $tb = CanaryTest->new(name => 'nginx B');
my $tc = CanaryTest->new(name => 'nginx C');

my $redis = '127.0.0.1:' . $ta->redis_start;

sub r { $ta->redis_cli(@_) }

sub conf {
    my ($t, $node, @splits) = @_;

    my $blocks = join '', map { split_block($_, 'stable_up', 'canary_up', 50) }
                          @splits;
    my @locations = map { [ $_ eq 'app' ? '/' : "/$_/", $_ ] } @splits;

    $t->write_conf(<<"EOF", workers => 2);
    canary_zone canary 1m;
    canary_redis $redis interval=250ms timeout=300ms node=$node;

$blocks
${\ $t->origins }
${\ front_server($t, locations => \@locations) }
EOF
}

sub record {
    my ($split, $node) = @_;

    my $json = r('GET', "canary:$split:node:$node");

    return length $json ? decode_json($json) : undef;
}

sub redis_ms {
    my ($s, $us) = r('TIME');

    return $s * 1000 + int($us / 1000);
}

# the node's score, if it is live (above Redis' time)
sub live_score {
    my ($split, $node) = @_;

    my $score = r('ZSCORE', "canary:$split:nodes", $node);

    return length $score && $score > redis_ms() ? $score : undef;
}

sub side { status_json($_[0])->{splits}{app}{variants}{$_[1]} }

# sparse "bucket:count" pairs -> the 322 counts
sub counts {
    my ($pairs) = @_;

    my @c = (0) x 322;

    for (split /,/, $pairs) {
        my ($b, $n) = split /:/;
        $c[$b] = $n;
    }

    return \@c;
}

# ---- nginx A reports ------------------------------------------------------

conf($ta, 'web-a', 'app');
$ta->start;

ok wait_until(3, sub { record('app', 'web-a') }), 'A: a record of app';

my $rec = record('app', 'web-a');
my $st = status_json($ta);

is $st->{redis}{node}, 'web-a', '/canary_status: redis.node web-a';
is $rec->{v}, 1, 'record: v 1';
is $rec->{node}, 'web-a', 'record: node';
is $rec->{split}, 'app', 'record: split';
is $rec->{hist}, 'us64x16x20', 'record: the histogram layout';
is $rec->{interval_ms}, 250, 'record: interval_ms';
is $rec->{created}, $st->{splits}{app}{created}, 'record: created';
is $rec->{weight}, 50, 'record: weight 50';
ok $rec->{enabled} && !$rec->{guard_tripped}, 'record: enabled, armed';

my $master = $ta->master_pid;
like $rec->{instance}, qr/^\d{10}\.$master$/,
    "record: instance $rec->{instance}: start time and master pid";
ok((grep { $_ == $rec->{pid} } $ta->worker_pids),
   "record: pid $rec->{pid}, a worker's");

my $pttl = r('PTTL', 'canary:app:node:web-a');
ok $pttl > 0 && $pttl <= $TTL_MS, "record: expires in $pttl ms (3 intervals)";

my $score = live_score('app', 'web-a');
my $now = redis_ms();
ok defined $score && $score <= $now + $TTL_MS,
    'canary:app:nodes: web-a scored within a ttl of Redis time'
    . (defined $score ? ' (+' . ($score - $now) . ' ms)' : '');

# ---- under traffic on both sides ------------------------------------------

my $load = Traffic->start(port => $ta->port('http'), clients => 2,
                          tenants => 300, pause => 0.002);
sleep 1;

my $mon_file = $ta->prefix . '/monitor.out';
$ta->spawn('sh', '-c', "exec redis-cli -p ${\ $ta->redis_port } MONITOR"
                       . " > $mon_file 2>/dev/null");
ok wait_until(10, sub { -s $mon_file }), 'MONITOR listens';

my %info0 = map { /^(\w+):(\S+)/ ? ($1, $2) : () } r('INFO', 'stats');
my $t0 = time;
sleep 12 * $INTERVAL;
my %info1 = map { /^(\w+):(\S+)/ ? ($1, $2) : () } r('INFO', 'stats');
my $t1 = time;

my $size = r('STRLEN', 'canary:app:node:web-a');
$rec = record('app', 'web-a');

cmp_ok $rec->{$_}{requests}, '>', 100, "under traffic: $_ has requests"
    for qw(stable canary);

# nginx A's commands, in whole rounds: from one report to the 11th after
open my $mon, '<', $mon_file or die "$mon_file: $!";
my (@rounds, %kinds);
my $n = 0;

while (my $line = <$mon>) {
    next unless $line =~ /^\d+\.\d+ \[\d+ ([^\]]+)\] "(\w+)"/;
    my ($client, $cmd) = ($1, uc $2);

    # the script's own calls, and this test's redis-cli
    next if $client eq 'lua' || $cmd eq 'INFO' || $cmd eq 'MONITOR';

    my $kind = $cmd eq 'EVAL' && $line =~ /redis\.call\('TIME'\)/
               ? 'report' : $cmd eq 'EVAL' ? 'read' : $cmd;

    push @rounds, $n if $kind eq 'report';
    last if @rounds == 11;

    $kinds{$kind}++ if @rounds;
    $n++ if @rounds;
}

is scalar(@rounds), 11, 'MONITOR saw 11 reports';

my $per = $n / 10;
diag sprintf "nginx A, 1 split: %d commands in 10 rounds (%s), %.1f bytes "
    . "to Redis an interval, a record of %d bytes", $n,
    join(', ', map { "$kinds{$_} $_" } sort keys %kinds),
    ($info1{total_net_input_bytes} - $info0{total_net_input_bytes})
    / (($t1 - $t0) / $INTERVAL), $size;

# the probe's timer runs on its own: whole rounds may hold one more
cmp_ok $n, '<=', 3 * 10 + 1, "at most 3 commands an interval ($per)";
is $kinds{report}, 10, 'one report a round';
cmp_ok(($info1{total_net_input_bytes} - $info0{total_net_input_bytes})
       / (($t1 - $t0) / $INTERVAL), '<=', 8192,
       'at most 8 KB to Redis an interval');
cmp_ok $size, '<=', 8192, "the record: $size bytes";

$load->stop;

# ---- quiesced: the record's counters are the status page's ---------------

ok wait_until(3, sub {
    my $r = record('app', 'web-a');
    $r->{stable}{requests} == side($ta, 'stable')->{requests}
        && $r->{canary}{requests} == side($ta, 'canary')->{requests} }),
    'quiesced: the record caught up';

$rec = record('app', 'web-a');

for my $side (qw(stable canary)) {
    my $s = side($ta, $side);
    my $r = $rec->{$side};

    is $r->{requests}, $s->{requests}, "$side: requests $s->{requests}";
    is_deeply $r->{responses},
              [ map { $s->{responses}{$_} } qw(1xx 2xx 3xx 4xx 5xx) ],
              "$side: responses";
    is $r->{upstream_errors}, $s->{upstream_errors}, "$side: upstream_errors";
    is_deeply counts($r->{latency}), $s->{latency}{counts},
              "$side: latency histogram";
    like $r->{latency}, qr/^\d+:[1-9]\d*(,\d+:[1-9]\d*)*$/,
         "$side: sparse pairs ($r->{latency})";
}

# ---- generation, weight and guard follow the writers -----------------------

ok wait_until(3, sub { record('app', 'web-a')->{generation}
                       == status_json($ta)->{splits}{app}{generation} }),
    'record: the generation applied';

# another nginx's guard trips (as its script writes it)
r('EVAL', "redis.call('HINCRBY', KEYS[1], 'generation', 1) "
          . "redis.call('HSET', KEYS[1], 'weight', '0', 'state', "
          . "'guard_tripped', 'updated_by', 'nginx-guard:other') "
          . "redis.call('PUBLISH', KEYS[1], 'guard_tripped')",
  1, 'canary:app');
my $gen = r('HGET', 'canary:app', 'generation');

ok wait_until(3, sub { my $r = record('app', 'web-a');
                       $r->{guard_tripped} && $r->{generation} == $gen
                       && $r->{weight} == 0 }),
    "record: guard tripped, weight 0, generation $gen";

ctl_ok($redis, 'reset', 'app', '--reason', 'fleet test');
ctl_ok($redis, 'set-weight', 'app', '12.5');
$gen = r('HGET', 'canary:app', 'generation');

ok wait_until(3, sub { my $r = record('app', 'web-a');
                       !$r->{guard_tripped} && $r->{generation} == $gen
                       && $r->{weight} == 12.5 }),
    "record: armed again, weight 12.5, generation $gen";
like r('GET', 'canary:app:node:web-a'), qr/"weight":12\.5,/,
    'record: weight as /canary_status prints it';

# ---- a reload: the same instance -------------------------------------------

my $instance = $rec->{instance};
my $pid = $rec->{pid};

$ta->reload;

ok wait_until(5, sub { my $r = record('app', 'web-a');
                       $r->{pid} != $pid }),
    'after a reload the new syncing worker reports';
is record('app', 'web-a')->{instance}, $instance,
    'after a reload: the same instance';

# ---- two splits; two nginx as one node -------------------------------------

conf($tb, 'web-b', 'app', 'api');
$tb->start;

ok wait_until(3, sub { record('app', 'web-b') && record('api', 'web-b') }),
    'B: a record of each split';
is record('api', 'web-b')->{split}, 'api', 'B: the record of api';
ok live_score('api', 'web-b') && live_score('app', 'web-b'),
    'B: live in both splits\' nodes';
is_deeply [ sort(r('ZRANGE', 'canary:app:nodes', 0, -1)) ],
          [ 'web-a', 'web-b' ], 'app: web-a and web-b';

my $ib = record('app', 'web-b')->{instance};

# a nodes set of another type: that split's report is refused, logged
# once; the other split's goes on
my $mark = $tb->log_mark;
r('DEL', 'canary:api:nodes');
r('SET', 'canary:api:nodes', 'oops');

my $wrong = qr/reporting to \S+: split "api": WRONGTYPE/;
ok $tb->wait_for_log($wrong, 3, $mark),
    'B: a nodes key of another type is logged';
r('DEL', 'canary:app:node:web-b');
ok wait_until(3, sub { record('app', 'web-b') }),
    'B: app is reported all the same';
sleep 4 * $INTERVAL;
is scalar(grep_lines($wrong, $tb->log_since($mark))), 1, 'B: logged once';

r('DEL', 'canary:api:nodes');
ok wait_until(3, sub { live_score('api', 'web-b') }),
    'B: api reported again once the key is gone';

# C claims B's name
conf($tc, 'web-b', 'app');
$tc->start;

my $ic;
ok wait_until(5, sub { my $r = record('app', 'web-b');
                       $ic = $r->{instance} if $r->{instance} ne $ib;
                       defined $ic }), 'C writes as web-b';

my $dup = qr/two nginx report as node "web-b" \(instances (\S+) and (\S+),/;
my ($lb, $lc);
ok wait_until(5, sub { $lb = $tb->wait_for_log($dup, 0);
                       $lc = $tc->wait_for_log($dup, 0);
                       $lb && $lc }),
    'B and C both warn: two nginx report as node web-b';
like $lb // '', qr/\Q$ib\E and \Q$ic\E/, 'B names both instances';
like $lc // '', qr/\Q$ic\E and \Q$ib\E/, 'C names both instances';

sleep 4 * $INTERVAL;
is scalar(grep_lines($dup, $tb->error_log)), 1, 'B warned once';

$tc->stop;
$tb->stop;

# ---- leaving: a stop removes the node at once; a death leaves it silent ----

# a reload: the new syncing worker reports, the node stays; the old
# syncing worker says no goodbye (it would remove the node until the
# new one's first report)
my $pid_a = record('app', 'web-a')->{pid};
my $mon_pid = open(my $reload_mon, '-|', 'redis-cli', '-p', $ta->redis_port,
                   'MONITOR') // die "redis-cli MONITOR: $!\n";
sleep 0.2;
$ta->reload;
ok wait_until(5, sub { my $r = record('app', 'web-a');
                       $r && $r->{pid} != $pid_a }),
    'A reloaded: the new syncing worker reports';
sleep 4 * $INTERVAL;
ok live_score('app', 'web-a'), 'A reloaded: still live';
kill 'TERM', $mon_pid;
my @goodbye = grep { /"(ZREM|DEL)"/ } <$reload_mon>;
close $reload_mon;
is scalar(@goodbye), 0, 'A reloaded: no goodbye from the old worker'
    or diag @goodbye;

my $t_stop = time;
$ta->stop;

my $gone = wait_until(3 * $INTERVAL, sub {
    !r('EXISTS', 'canary:app:node:web-a')
    && !length(r('ZSCORE', 'canary:app:nodes', 'web-a')) });
ok defined $gone, 'A stopped (QUIT): its record and its member are gone'
    . (defined $gone ? sprintf(' after %.2f s', time - $t_stop) : '');
ok $ta->wait_for_log(qr/canary_redis: node "web-a" left the fleet/, 1),
    'A says it left the fleet';

# killed: nobody says goodbye; the record expires, the member stays
# with its expired score (silent) for the sidecar to see
$ta->start;
ok wait_until(5, sub { live_score('app', 'web-a') }), 'A started again';
my @pids = ($ta->master_pid, $ta->worker_pids);
kill 'KILL', @pids;
$t_stop = time;

$gone = wait_until(3 * $INTERVAL + 1, sub {
    !r('EXISTS', 'canary:app:node:web-a') && !live_score('app', 'web-a') });
ok defined $gone, 'A killed: its record expires, it is no longer live'
    . (defined $gone ? sprintf(' after %.2f s', time - $t_stop) : '');
cmp_ok r('ZSCORE', 'canary:app:nodes', 'web-a') || 0, '>', 0,
    'A killed: still a member, silent (expired score)';
$ta->stop(no_check => 1);

done_testing;
