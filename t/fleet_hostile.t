#!/usr/bin/perl

# Story: two nginx are given one node name (canary_redis node=web-1) and
# start within one second, so that their counters have one "created":
# their records overwrite each other in Redis, and the sidecar in fleet
# mode reads one, then the other.  It cannot judge either, but it must
# never count more than the fleet served: a record that flips back to the
# other nginx's counters is not a restart.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'fleet_hostile', nginx => 2,
                         names => { 0 => 'web-1', 1 => 'web-1' },
                         intervals => { 1 => '330ms' }, same_second => 1);
$s->start;

my @created = map { created($s->nginx($_)) } 0 .. 1;
is $created[0], $created[1], "both nginx's counters start at $created[0]";

$s->wait_for(sub { $s->nginx(0)->error_log . $s->nginx(1)->error_log
                   =~ /two nginx report as node "web-1"/ }, 5,
             'nginx say two of them report as web-1');

my $plan = fast_plan();
$plan->{stages}[0]{hold} = '60s';

$s->sidecar(plan => $plan, fleet => 1);

$s->wait_for(sub { grep { $_ eq 'rollout_started' } $s->operations }, 10,
             'the rollout starts') or $s->show_log;

sleep 0.8;

# known requests, more to the second nginx: the records differ
my %sent = (stable => 0, canary => 0);

for my $i (0 .. 1) {
    my $t = $s->nginx($i);
    my @reqs = ((map { { path => '/', headers => ['X-Tenant-Id' => "t$_"] } }
                     1 .. 20 + 40 * $i),
                (map { { path => '/', headers => ['X-Tenant-Id'
                                                  => $SidecarTest::PINNED] } }
                     1 .. 10 + 20 * $i));
    my $res = $t->route_many($t->port('http'), \@reqs, clients => 1);

    $sent{$_->{variant} // 'none'}++ for @$res;
}

# the stage's evidence while the record flips between the two (each
# reports every 200 or 330 ms)
my @most = (0, 0);
my $until = time + 4;

while (time < $until) {
    my $e = $s->state_hash->{evidence} // '';
    my ($st) = $e =~ / s (\d+) /;
    my ($cn) = $e =~ / c (\d+) /;

    $most[0] = $st if defined $st && $st > $most[0];
    $most[1] = $cn if defined $cn && $cn > $most[1];
    sleep 0.1;
}

ok $most[0] <= $sent{stable} && $most[1] <= $sent{canary},
    "the stage's evidence: stable at most $most[0] of $sent{stable} "
    . "served, canary $most[1] of $sent{canary}: never more";

like $s->sidecar_log, qr/two nginx with one node name/,
    'the sidecar says why it does not count them';

$s->finish;

done_testing;


sub created {
    my ($t) = @_;

    my $r = $t->get($t->port('http'), '/canary_status?format=json&split=api');

    return decode_json($r->{content})->{splits}{api}{created};
}
