#!/usr/bin/perl

# Story: a guard trip that Redis refuses is written all or nothing, and
# tried again less and less often; once Redis takes it, it is written once.
#
# The hash's generation is "notanint" (a hand-edited Redis): HINCRBY
# fails.  The guard trips.  Nothing of the trip may reach Redis while the
# value is bad: no receipt, no state, no weight 0, no PUBLISH (a MULTI/EXEC
# would run the rest of its commands all the same, every 100 ms).  The
# refusal is logged once, and the attempts back off (100 ms doubling to
# 5 s).  Then the generation is fixed: the trip is written, once, as the
# next generation.  The same when the receipts key is not a stream (XADD
# would fail after HINCRBY and HSET, and Redis does not undo a script's
# writes): nothing written, an operator's reset stands.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;
use RedisStory qw(:all);
use Traffic;

my $t = CanaryTest->new;
my $port = $t->port('http');
my $redis = '127.0.0.1:' . $t->redis_start;

$t->write_conf(<<"EOF", workers => 2);
    canary_zone canary 1m;
    canary_redis $redis interval=200ms timeout=500ms;

${\ split_block('app', 'app_stable', 'app_canary', 50,
                'guard error_rate=10 min_requests=20 window=10s') }
${\ fault_origins($t) }
${\ front_server($t) }
EOF
$t->start;

# canary-ctl writes a split only once a live nginx reports it: its first
# report comes an interval after it starts
ok wait_nodes($redis, 'app', 1), 'nginx reports split app';

sub status { status_json($t)->{splits}{app} }

sub receipts {
    return scalar grep { /"operation":"guard_tripped"/ }
                       $t->redis_cli('XRANGE', 'canary:app:receipts', '-',
                                     '+');
}

# calls of a command since the last CONFIG RESETSTAT
sub calls {
    my ($cmd) = @_;

    my ($line) = grep { /^cmdstat_\Q$cmd\E:/ }
                      $t->redis_cli('INFO', 'commandstats');
    return $line && $line =~ /calls=(\d+)/ ? $1 : 0;
}

ctl_ok($redis, 'set-weight', 'app', 50);
ok defined wait_until(3, sub { status()->{weight} == 50 }), 'weight 50';

$t->allow_log(qr/rejected field "generation"/);
$t->redis_cli('HSET', 'canary:app', 'generation', 'notanint');

my $published = $t->prefix . '/published';
subscribe($t, 'canary:app', $published);
sleep 0.5;

# ---- the guard trips; Redis refuses the write -------------------------------

my $mark = $t->log_mark;
$t->redis_cli('CONFIG', 'RESETSTAT');

my $load = Traffic->start(port => $t->port('http'), clients => 2,
                          pause => 0.002, tenants => 300);
sleep 0.3;
fault($t, 1);
ok defined wait_until(5, sub { status()->{guard}{tripped} }),
    'the guard trips';
fault($t, 0);
$load->stop;

my $since = time;
sleep 4;
my $secs = time - $since;

is receipts(), 0, sprintf('no receipt in %.1fs while the generation is '
                          . 'bad', $secs);
is $t->redis_cli('HGET', 'canary:app', 'state'), '',
    'no state written';
is $t->redis_cli('HGET', 'canary:app', 'weight'), '50', 'nor weight 0';
is $t->redis_cli('HGET', 'canary:app', 'generation'), 'notanint',
    'the generation as it was';

my @msgs = grep { /guard_tripped/ }
           do { open my $fh, '<', $published or die $!; <$fh> };
is scalar(@msgs), 0, 'nothing published';

my $tries = calls('hincrby');
cmp_ok $tries, '>=', 1, "the write was tried ($tries times)";
# 100 ms doubling: 6 tries in 4 s, or 7; every 100 ms would be 40
cmp_ok $tries, '<=', 8, 'and backs off';

my @refused = log_lines($t, qr/could not write the guard trip/, $mark);
is scalar(@refused), 1, 'the refusal is logged once'
    or diag explain \@refused;
like $refused[0] // '', qr/not an integer/, 'with what Redis said';
ok status()->{guard}{tripped}, 'the guard stays tripped';

# ---- the generation fixed: the trip is written, once ------------------------

$t->redis_cli('HSET', 'canary:app', 'generation', 7);

ok defined wait_until(8, sub {
        $t->redis_cli('HGET', 'canary:app', 'state') eq 'guard_tripped' }),
    'once the generation is an integer again, the trip is written';
is $t->redis_cli('HGET', 'canary:app', 'generation'), 8,
    'as the next generation';
is $t->redis_cli('HGET', 'canary:app', 'weight'), '0', 'weight 0';

sleep 1;
is receipts(), 1, 'one receipt';
@msgs = grep { /guard_tripped/ }
        do { open my $fh, '<', $published or die $!; <$fh> };
is scalar(@msgs), 1, 'one PUBLISH';
ok status()->{guard}{tripped}, 'still tripped: its own write re-arms '
    . 'nothing';

# ---- the receipts key is not a stream ----------------------------------------

ctl_ok($redis, 'reset', 'app', '--reason', 'test');
ok defined wait_until(5, sub { !status()->{guard}{tripped} }),
    'reset: the guard is armed again';
ctl_ok($redis, 'set-weight', 'app', 50);

my $gen = $t->redis_cli('HGET', 'canary:app', 'generation');
$t->redis_cli('DEL', 'canary:app:receipts');
$t->redis_cli('SET', 'canary:app:receipts', 'not a stream');
$t->allow_log(qr/not a stream/);

$load = Traffic->start(port => $t->port('http'), clients => 2,
                       pause => 0.002, tenants => 300);
sleep 0.3;
fault($t, 1);
ok defined wait_until(5, sub { status()->{guard}{tripped} }),
    'the guard trips again';
fault($t, 0);
$load->stop;
sleep 2;

is $t->redis_cli('HGET', 'canary:app', 'generation'), $gen,
    'receipts not a stream: the generation as it was';
is $t->redis_cli('HGET', 'canary:app', 'weight'), '50', 'the weight too';
isnt $t->redis_cli('HGET', 'canary:app', 'state'), 'guard_tripped',
    'no state written';

$t->redis_cli('DEL', 'canary:app:receipts');
ok defined wait_until(8, sub {
        $t->redis_cli('HGET', 'canary:app', 'state') eq 'guard_tripped' }),
    'the key gone, the trip is written';
is $t->redis_cli('HGET', 'canary:app', 'generation'), $gen + 1,
    'once, as the next generation';

$t->stop;

done_testing;
