#!/usr/bin/perl

# Story: split verification.  Three nginx report to one Redis and the
# sidecar runs without --status.  The third nginx's only worker (its
# syncing worker) is stopped with SIGSTOP: it cannot apply what is
# written, but its last record stays live for a while (its interval is
# 3s: the record lives 9s).  The sidecar's next promotion is not applied
# there: the sidecar logs web-3 as lagging with its generation, records
# it in its state ("lagging"), and once it lags lag_hold it holds the
# rollout (no promotion).  Its record then expires: web-3 is silent,
# cut from Redis rather than gone (it answered after the generation it
# lacks was written), and still holds the rollout.  After SIGCONT web-3
# reports again, follows, and the rollout goes on.  Then web-3 stops
# (QUIT: scaled in): it says goodbye, leaves the nodes set, and holds
# nothing: the rollout completes.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);
use Traffic;

my $s = SidecarTest->new(name => 'fleet_lag', nginx => 3, nodes => 1,
                         intervals => { 2 => '4s' });
$s->start;

# stages enough that the rollout is still promoting when web-3 lags
my $plan = fast_plan(lag => '4500ms', lag_hold => '5s');
$plan->{stages} = [
    (map { { name => "s$_", weight => $_, hold => '2s' } } 0, 5, 10, 20, 30,
                                                         40, 50),
    { name => 's100', weight => 100, hold => '0s', manual => JSON::PP::true },
];

# traffic on the two that keep running
my @ports = map { $s->nginx($_)->port('http') } 0, 1;
my $traffic = Traffic->start(
    ports => \@ports, clients => 2, rate => 80,
    log => $s->prefix . '/traffic.log', reconnect => 0.02,
    tenant => sub { rand() < 0.1 ? $SidecarTest::PINNED
                                  : 'tenant-' . (1 + int rand 2000) });

$s->wait_for(sub { $s->redis('ZCARD', $s->key . ':nodes') == 3 }, 10,
             'the three nginx report themselves');

$s->sidecar(plan => $plan, fleet => 1);

$s->wait_for(sub { ($s->state_hash->{stage_name} // '') eq 's5' },
             20, 'at 5%') or $s->show_log;

# stop web-3 just after it reported, so that its record lives 12s more
my $t3 = $s->nginx(2);
my ($worker) = $t3->worker_pids;
die "fleet_lag: no worker of web-3\n" unless $worker;
my $score = $s->redis('ZSCORE', $s->key . ':nodes', 'web-3');
$s->wait_for(sub { $s->redis('ZSCORE', $s->key . ':nodes', 'web-3')
                   != $score }, 5, 'web-3 reports');
kill 'STOP', $worker;
my $stopped = time;

# the next promotion is not applied there
$s->wait_for(sub { $s->sidecar_log =~ /did not apply generation/ }, 10,
             'the rollout holds on web-3') or $s->show_log;
my $stage = $s->state_hash->{stage_name} // '';
my $log = $s->sidecar_log;

# the plan's lag as it wrote it: 4500ms
my $said = qr/api: 1 nginx lag: not at the split's generation \d+ 4500ms/
           . qr/ after it was written: web-3 at generation (\d+)\n/;
my ($gen) = $log =~ /$said/m;
ok defined $gen, 'the log names web-3 lagging, with its generation '
   . ($gen // 'none');
$gen //= -1;
cmp_ok $gen, '<', $s->hget('generation'), 'behind the split\'s generation';
is $s->state_hash->{lagging} // '', "web-3 at generation $gen",
    'the sidecar\'s state says web-3 lags';
my $hold = qr/hold: 1 nginx did not apply generation \d+ for 5s or more: /
           . qr/web-3 at generation $gen; no promotion/;
like $log, qr/$hold/,
    'the hold names web-3';

sleep 1.5;
is $s->state_hash->{stage_name}, $stage,
    "no promotion from $stage while web-3 lags (stage hold 2s)";

# its record expires: silent, still lagging, still holding
$s->wait_for(sub { $s->redis('ZSCORE', $s->key . ':nodes', 'web-3')
                   < 1000 * time }, 15, 'web-3\'s record expires');
$s->wait_for(sub { ($s->state_hash->{lagging} // '') =~ /\(silent\)/ }, 5,
             'web-3 is silent');
is $s->state_hash->{lagging} // '', "web-3 at generation $gen (silent)",
    'the state says web-3 lags, silent';
my $silent_hold = qr/hold: 1 nginx did not apply generation \d+ for /
                  . qr/5s or more: web-3 at generation $gen \(silent\)/;
like $s->sidecar_log, qr/$silent_hold/, 'the hold names web-3, silent';
sleep 1;
is $s->state_hash->{stage_name}, $stage, "still no promotion from $stage";

kill 'CONT', $worker;
diag(sprintf 'web-3 stopped for %.1fs', time - $stopped);

$s->wait_for(sub { $s->sidecar_log =~ /every nginx that reports applies/ },
             8, 'web-3 follows again') or $s->show_log;
cmp_ok $s->redis('ZSCORE', $s->key . ':nodes', 'web-3'), '>',
    1000 * time, 'web-3 reports again';

$s->wait_for(sub { ($s->state_hash->{stage_name} // '') ne $stage
                   || $s->hget('state') eq 'awaiting_resume' },
             10, 'the rollout goes on') or $s->show_log;
is $s->state_hash->{lagging}, '', 'nothing lags in the state';

# ---- scaled in: web-3 stops, says goodbye, holds nothing -------------------

$s->stop_nginx(2);
ok !length($s->redis('ZSCORE', $s->key . ':nodes', 'web-3') // ''),
    'web-3 stopped (QUIT): it left the nodes set at once';

$s->wait_for(sub { $s->hget('state') eq 'awaiting_resume' }, 20,
             'the rollout reaches its manual stage') or $s->show_log;
$s->ctl('resume', 'api');
$s->wait_for(sub { $s->hget('state') eq 'complete' }, 10,
             'and completes without web-3') or $s->show_log;
is $s->state_hash->{lagging}, '', 'nothing lags';

$traffic->stop;
$s->finish;

done_testing;
