#!/usr/bin/perl

# Story: two nginx instances (4 workers each) share one Redis.  An operator
# changes the weight with canary-ctl; within moments every worker of
# both instances routes with the new weight (make bench holds the figure,
# p99 under 50 ms; this test allows 5 s, for a busy machine).
#
# The poll interval is set to 60s on purpose: only the PUBLISH that
# canary-ctl sends after its MULTI/EXEC can deliver a write this fast (a
# poll would take up to a minute), so the times measured here are those
# of the subscription path.  Requests
# go out without keep-alive to a "reuseport" listener, so the kernel
# spreads them over every worker; we poll until every worker pid of both
# instances has answered with the new $canary_weight, and take the time
# from just before canary-ctl started to the first such answer of the
# slowest worker.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;
use RedisStory qw(:all);

my $WORKERS = 4;

my $na = CanaryTest->new(name => "nginx A");
my $nb = CanaryTest->new(name => "nginx B");

my $redis_port = $na->redis_start;
my $redis = "127.0.0.1:$redis_port";

for my $t ($na, $nb) {
    $t->write_conf(redis_split_conf($t,
                       redis => "$redis interval=60s timeout=500ms",
                       listen => 'reuseport'),
                   workers => $WORKERS);
    $t->start;
}

# interval=60s (the story is PUBLISH's speed, not the poll's): nginx
# reports a minute after it starts, so the writes are forced
sub ctl { canary_ctl($redis, @_, '--force') }

# both instances are subscribed once "connected" shows on their status
for my $t ($na, $nb) {
    my $st;

    wait_until(5, sub { ($st = status_json($t)) && $st->{redis}{connected} },
               0.05);

    ok $st && $st->{redis}{connected}, "$t->{name} is connected to Redis";
}

my @pids = map { my $t = $_; map { [$t, $_] } $t->worker_pids } $na, $nb;
is scalar(@pids), 2 * $WORKERS, "two instances of $WORKERS workers each";

# polls both instances, without keep-alive, until every worker reported
# $want; returns (seconds until the slowest worker, requests, anomalies)
sub wait_all_workers {
    my ($want, $t0, $limit) = @_;

    my %first;              # "name/pid" -> seconds after $t0
    my %expected = map { ("$_->[0]{name}/$_->[1]" => 1) } @pids;
    my $requests = 0;
    my @went_back;

    while (keys %first < keys %expected && time - $t0 < $limit) {
        for my $t ($na, $nb) {
            my $d = $t->route($t->port('http'), '/',
                              { 'X-Tenant-Id' => "tenant-$requests" });
            $requests++;

            my $id = "$t->{name}/" . ($d->{pid} // '?');

            if (defined $d->{weight} && $d->{weight} eq $want) {
                $first{$id} //= time - $t0;

            } elsif ($first{$id}) {
                # a worker that had the new weight must keep it
                push @went_back, "$id answered $d->{weight} after $want";
            }
        }
    }

    my @missing = grep { !exists $first{$_} } sort keys %expected;
    my ($slowest) = sort { $b <=> $a } values %first;

    return ($slowest, $requests, \@missing, \@went_back);
}

my @times;

for my $weight (qw(12.5 40 0.25 77 100 3)) {
    my $t0 = time;
    my ($rc, $out) = ctl('set-weight', 'app', $weight);
    my $written = time - $t0;

    is $rc, 0, "canary-ctl set-weight app $weight" or diag $out;

    my ($slowest, $requests, $missing, $went_back)
        = wait_all_workers($weight, $t0, 6);

    is_deeply $missing, [], "weight $weight reached all "
        . (2 * $WORKERS) . " workers of both instances";
    is_deeply $went_back, [], "no worker went back to the old weight";

    if (defined $slowest && !@$missing) {
        cmp_ok $slowest, '<', 5.0, "weight $weight everywhere in < 5s";
        push @times, $slowest;
    }

    diag sprintf "weight %-5s: canary-ctl returned after %.0fms, every "
                 . "worker of both instances routed with it after %.0fms "
                 . "(%d requests)", $weight, $written * 1000,
                 ($slowest // 99) * 1000, $requests;
}

if (@times) {
    my @s = sort { $a <=> $b } @times;
    my $median = @s % 2 ? $s[$#s / 2] : ($s[@s / 2 - 1] + $s[@s / 2]) / 2;

    diag sprintf "propagation to all %d workers over %d writes: "
                 . "median %.0fms, max %.0fms", 2 * $WORKERS, scalar(@s),
                 $median * 1000, $s[-1] * 1000;
}

# the status pages agree: same generation, weight from Redis
my $gen = $na->redis_cli('HGET', 'canary:app', 'generation');

for my $t ($na, $nb) {
    my $st = status_json($t);
    my $s = $st->{splits}{app};

    is $s->{weight}, 3, "$t->{name}: status weight is the last write";
    is $s->{source}, 'redis', "$t->{name}: source redis";
    is $s->{generation}, $gen, "$t->{name}: generation $gen as in Redis";
    is $s->{updated_by}, $na->redis_cli('HGET', 'canary:app', 'updated_by'),
        "$t->{name}: updated_by as in Redis";
}

# the syncing worker holds exactly one subscription per instance
is $na->redis_cli('PUBSUB', 'NUMSUB', 'canary:app') =~ /^canary:app\n(\d+)$/
       ? $1 : -1, 2, 'one subscriber per nginx instance on canary:app';

$nb->stop;
$na->stop;

done_testing;
