#!/usr/bin/perl

# Story: operators act on a rollout that canary-sidecar is walking, with
# canary-ctl, and the sidecar notices each by the generation:
#   pause          it holds the stage (no promotion), and says why
#   resume         it goes on
#   set-weight 30  the operator's weight stands: the sidecar re-anchors at
#                  the 20% stage, restarts its hold and promotes to 50
#                  from 30
#   rollback       it stops acting on the rollout, without a receipt of
#                  its own
# Deleting the sidecar's state does not start a new rollout (it writes
# back what it remembers); canary-ctl reset does; the module's guard
# tripping (weight 0, state guard_tripped, its own receipt) stops it too.
# A name from Redis with a newline stays on its log line, escaped.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'operator');
$s->start;
$s->traffic(clients => 3, rate => 100);

$s->sidecar(plan => fast_plan(), args => ['--log-every', '0']);

sub stage { $s->state_hash->{stage_name} // '' }
sub sidecar_receipts { grep { $_->{by} eq 'sidecar-a' } $s->receipts }

$s->wait_for(sub { stage() eq '5_percent' }, 20, 'at 5%') or $s->show_log;

like((split /\n/, $s->sidecar_log)[0], qr/; a line every interval$/,
     '--log-every 0: the start line says a line every interval');

# paused by hand in Redis, by a name with a newline: the log line keeps
# it escaped, and no line of the log is forged
$s->redis('EVAL', <<'LUA', 1, $s->key);
redis.call('HINCRBY', KEYS[1], 'generation', 1)
redis.call('HSET', KEYS[1], 'state', 'paused',
           'updated_by', 'operator\n2026-01-01T00:00:00Z api FORGED'
                         .. ' \194\1552J \226\128\174rlo \255')
return 1
LUA
sleep 3;
is stage(), '5_percent', 'paused: still at 5% after more than its hold';
is $s->hget('state'), 'paused', 'state paused';
is $s->state_hash->{status}, 'paused', 'the sidecar knows';
like $s->sidecar_log, qr/operator: paused by operator\\n2026-01-01T/,
    'logged, its newline as \\n';
unlike $s->sidecar_log, qr/^2026-01-01T00:00:00Z api FORGED/m,
    'no line forged';
like $s->sidecar_log, qr/FORGED \\xc2\\x9b2J \\xe2\\x80\\xaerlo \\xff/,
    'a C1 (CSI), a bidi control, a byte that is no UTF-8: escaped';
unlike $s->sidecar_log, qr/\xc2[\x80-\x9f]|\xe2\x80\xae|\xff/,
    'none of them raw in the log';
like $s->sidecar_log, qr/paused: holding until canary-ctl resume/,
    'and why it holds';

note $s->ctl('resume', 'api');
$s->wait_for(sub { stage() eq '20_percent' }, 10, 'resumed: on to 20%')
    or $s->show_log;
is $s->hget('state'), 'running', 'running';

note $s->ctl('set-weight', 'api', '30');
$s->wait_for(sub { $s->state_hash->{weight} eq '30' }, 5,
             'the sidecar takes the operator\'s weight')
    or $s->show_log;
like $s->sidecar_log, qr/weight\ set\ to\ 30%\ by\ operator:\ at\ stage
                          \ 20_percent\ now,\ its\ hold\ starts\ over/x,
    'logged';

$s->wait_for(sub { stage() eq '50_percent' }, 10, 'then on to 50%')
    or $s->show_log;
my @mine = sidecar_receipts();
is $mine[-1]{from_weight}, 30, 'promoted from the operator\'s 30';
is $mine[-1]{to_weight}, 50, 'to 50';

note $s->ctl('rollback', 'api', '--reason', 'customer report');
$s->wait_for(sub { $s->state_hash->{status} eq 'rolled_back' }, 5,
             'the sidecar stops')
    or $s->show_log;
my $n = () = sidecar_receipts();
sleep 1.5;
is scalar(() = sidecar_receipts()), $n, 'no receipt of its own after it';
is $s->hget('weight'), '0', 'the operator\'s weight 0 stands';
is(($s->receipts)[-1]{operation}, 'rollback_executed',
   'the last receipt is canary-ctl\'s');
like $s->sidecar_log, qr/stopped: state rolled_back by operator/,
    'logged';

# deleting the sidecar's state does not start a rollout over a
# rollback: nobody acknowledged it, and the sidecar remembers it
$s->redis('DEL', $s->key . ':sidecar');
sleep 1.5;
is $s->hget('state'), 'rolled_back', 'no new rollout over a rollback';
is $s->state_hash->{status}, 'rolled_back',
    'the sidecar wrote back the state it remembers';
like $s->sidecar_log, qr/Redis has lost the sidecar's state/,
    'and says why';

# a new rollout: the operator acknowledges the rollback
note $s->ctl('reset', 'api', '--reason', 'fixed in v2');
$s->wait_for(sub { $s->hget('state') eq 'running' }, 5, 'started again')
    or $s->show_log;
is((sidecar_receipts())[-1]{operation}, 'rollout_started',
   'a new rollout_started');

# the module's guard trips: weight 0, guard_tripped, its own receipt
$s->redis('EVAL', <<'LUA', 2, $s->key, $s->key . ':receipts');
redis.call('HINCRBY', KEYS[1], 'generation', 1)
redis.call('HSET', KEYS[1], 'weight', '0', 'state', 'guard_tripped',
           'updated_by', 'nginx-guard')
redis.call('XADD', KEYS[2], '*', 'receipt',
           '{"operation":"guard_tripped","by":"nginx-guard"}')
return 1
LUA

$s->wait_for(sub { $s->state_hash->{status} eq 'rolled_back' }, 5,
             'the guard stops the sidecar')
    or $s->show_log;
like $s->state_hash->{stopped_by}, qr/guard_tripped by nginx-guard/,
    'the sidecar records who stopped it';
sleep 1;
is(($s->receipts)[-1]{operation}, 'guard_tripped',
   'no receipt after the guard\'s');
is $s->hget('state'), 'guard_tripped', 'the guard\'s state stands';

$s->finish;

done_testing;
