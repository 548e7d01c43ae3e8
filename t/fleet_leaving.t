#!/usr/bin/perl

# Story: an nginx scaled in with SIGKILL during a rollout says no
# goodbye: its member stays in the nodes set, silent, for 5 minutes, and
# the sidecar (fleet mode) holds the rollout for it once a promotion was
# written after it fell silent.  The sidecar is then restarted: it never
# saw web-2 answer and cannot know its generation, yet web-2 is still
# silent, not gone: the new sidecar holds too, naming web-2 at an
# unknown generation, and promotes nothing.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);
use Traffic;

my $s = SidecarTest->new(name => 'fleet_leaving', nginx => 2, nodes => 1);
$s->start;

my $plan = fast_plan(lag => '1s', lag_hold => '2s');
$plan->{stages} = [
    (map { { name => "s$_", weight => $_, hold => '1s' } } 0, 5, 10, 20, 30,
                                                         40, 50),
    { name => 's100', weight => 100, hold => '0s', manual => JSON::PP::true },
];

# traffic on the one that keeps running
my $traffic = Traffic->start(
    ports => [$s->nginx(0)->port('http')], clients => 2, rate => 80,
    log => $s->prefix . '/traffic.log', reconnect => 0.02,
    tenant => sub { rand() < 0.1 ? $SidecarTest::PINNED
                                  : 'tenant-' . (1 + int rand 2000) });

$s->wait_for(sub { $s->redis('ZCARD', $s->key . ':nodes') == 2 }, 10,
             'the two nginx report themselves');

$s->sidecar(plan => $plan, fleet => 1);

$s->wait_for(sub { ($s->state_hash->{stage_name} // '') eq 's5' },
             20, 'at 5%') or $s->show_log;

# scaled in the hard way: no goodbye
my $t2 = $s->nginx(1);
kill 'KILL', $t2->master_pid, $t2->worker_pids;

$s->wait_for(sub { ($s->state_hash->{lagging} // '')
                   =~ /^web-2 .*\(silent\)$/ },
             10, 'web-2 is silent and lags') or $s->show_log;
my $hold = qr/hold: 1 nginx did not apply .*: web-2 at generation \d+ /
           . qr/\(silent\)/;
$s->wait_for(sub { $s->sidecar_log =~ $hold }, 5,
             'the rollout holds on web-2') or $s->show_log;
my $stage = $s->state_hash->{stage_name};

# a new sidecar, with no memory of web-2's generation
$s->kill_sidecar('sidecar-a');
my $mark = length $s->sidecar_log;
$s->sidecar(plan => $plan, fleet => 1);

my $held = qr/hold: 1 nginx .*: web-2 at an unknown generation \(silent\)/;
$s->wait_for(sub { substr($s->sidecar_log, $mark) =~ $held }, 8,
             'the restarted sidecar holds on web-2, silent')
    or $s->show_log;
is $s->state_hash->{lagging} // '',
    'web-2 at an unknown generation (silent)',
    'its state names web-2, generation unknown';
sleep 2;
is $s->state_hash->{stage_name}, $stage,
    "no promotion from $stage after the restart";

$traffic->stop;
$t2->stop(no_check => 1);
$s->finish;

done_testing;
