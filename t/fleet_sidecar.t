#!/usr/bin/perl

# Story: five nginx (one worker each, nodes web-1 .. web-5) report
# themselves to one Redis, and canary-sidecar runs WITHOUT --status: it
# finds the fleet in Redis.  First the stage's evidence is checked
# exactly: only this test's own requests, a known number to each nginx,
# so the receipt that ends the first stage must state their sum over all
# five (the same numbers the URL mode gives, t/sidecar_fleet.t).  With
# traffic on all five the rollout completes.  Then, reset, a canary
# whose errors are spread over all five nginx (each one's canary answers
# some 500s) is rolled back on the fleet's sum.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);
use Traffic;

my $s = SidecarTest->new(name => 'fleet_sidecar', nginx => 5, nodes => 1,
                         canary_fault => 100);
$s->start;

my $plan = fast_plan();
$plan->{stages}[0]{hold} = '3s';
$plan->{stages}[4]{manual} = JSON::PP::false;

$s->wait_for(sub { $s->redis('ZCARD', $s->key . ':nodes') == 5 }, 10,
             'the five nginx report themselves');

$s->sidecar(plan => $plan, fleet => 1);

$s->wait_for(sub { grep { $_ eq 'rollout_started' } $s->operations }, 10,
             'the rollout starts') or $s->show_log;
is_deeply(($s->receipts)[-1]{nginx}, { answered => 5, asked => 5 },
          'the start says it read five nodes');

# a reading of every node after the start, then known requests only
sleep 0.8;

my %sent;

for my $i (0 .. 4) {
    my $t = $s->nginx($i);
    my @reqs = ((map { { path => '/', headers => ['X-Tenant-Id' => "t$_"] } }
                     1 .. 30 + 5 * $i),
                (map { { path => '/', headers => ['X-Tenant-Id'
                                                  => $SidecarTest::PINNED] } }
                     1 .. 12 + $i));
    my $res = $t->route_many($t->port('http'), \@reqs, clients => 1);

    $sent{$_->{variant} // 'none'}++ for @$res;
}

is_deeply [sort keys %sent], [qw(canary stable)],
    "sent: stable $sent{stable}, canary $sent{canary}, over five nginx";

$s->wait_for(sub { grep { $_ eq 'canary_phase_complete' } $s->operations },
             20, 'the first stage is complete') or $s->show_log;

my ($done) = grep { $_->{operation} eq 'canary_phase_complete' }
             $s->receipts;
$done ||= {};

is_deeply $done->{nginx}, { answered => 5, asked => 5 },
    'judged on all five';
is_deeply $done->{requests}, { stable => $sent{stable},
                               canary => $sent{canary} },
    'the stage\'s requests are the sum of what the five nginx served';

# ---- the healthy rollout completes -------------------------------------------

$s->traffic(clients => 4, rate => 80);

$s->wait_for(sub { grep { $_ eq 'deployment_complete' } $s->operations },
             25, 'the rollout completes on the fleet') or $s->show_log;
is $s->hget('weight'), '100', 'at 100%';

$s->stop_traffic;

# ---- a failing canary, its errors spread over all five ----------------------

$s->ctl('reset', 'api', '--reason', 'next release');

# every nginx's canary answers 500s; the stage's canary requests come
# from the pinned tenant, every fifth request of one client on each
# nginx: the five send them in step, so the errors the judge acts on
# come from all five (with random errors, one nginx in about ten runs
# had none yet when the rollback came)
my %before = map { $_ => canary_5xx($s->nginx($_)) } 0 .. 4;
$s->fault('fault_canary', 1);

my @traffic = map {
    my $k = 0;
    Traffic->start(ports => [$s->nginx($_)->port('http')], clients => 1,
                   rate => 20, log => $s->prefix . '/traffic.log',
                   tenant => sub { ++$k % 5 ? 'tenant-' . (1 + int rand 2000)
                                            : $SidecarTest::PINNED })
} 0 .. 4;

$s->wait_for(sub { $s->hget('state') eq 'rolled_back' }, 25,
             'the failing canary is rolled back') or $s->show_log;

my ($rb) = grep { $_->{operation} eq 'rollback_executed' } $s->receipts;
is_deeply $rb->{nginx}, { answered => 5, asked => 5 },
    'judged on all five nginx';

my @errors = map { canary_5xx($s->nginx($_)) - $before{$_} } 0 .. 4;
is scalar(grep { $_ > 0 } @errors), 5,
    "every nginx served canary 500s (@errors)";
diag("canary 500s per nginx until the rollback: @errors");

$_->stop for @traffic;
$s->fault('fault_canary', 0);
$s->finish;

done_testing;


sub canary_5xx {
    my ($t) = @_;

    my $r = $t->get($t->port('http'), '/canary_status?format=json&split=api');

    return decode_json($r->{content})->{splits}{api}{variants}{canary}
           {responses}{'5xx'};
}
