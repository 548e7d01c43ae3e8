#!/usr/bin/perl

# Story: an operator ramps a canary 1 -> 5 -> 25 -> 50 -> 100 percent by
# editing "weight" in nginx.conf and running "nginx -s reload".  Each reload
# takes effect, and a ramp only ever adds tenants to canary: every tenant
# that was on canary at one weight is still there at the next, so nobody
# flips back and forth between versions.  A cohort weight edited in the
# same reloads (beta: 5 -> 25 -> 50 -> 100) ramps the same way for the
# tenants of that cohort.  Ramping back down to 5 puts exactly the tenants
# of the first 5 percent back on canary.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use CanaryTest;
use Traffic;
use Time::HiRes qw(sleep);

my $N = 2500;
my $SALT = 'release-42';
my @tenants = map { "org-$_-" . ($_ * 7919 % 10007) } 1 .. $N;

# [split weight, beta cohort weight] at each step
my @steps = ([1, 5], [5, 25], [25, 50], [50, 100], [100, 100], [5, 5]);

my $t = CanaryTest->new;
my $port = $t->port('http');

sub conf {
    my ($weight, $beta) = @_;

    $t->write_conf(<<"EOF", workers => 2);
    canary_zone canary 4m;

    canary_split checkout {
        stable stable_up;
        canary canary_up;
        salt   $SALT;
        weight $weight;
        cohort \$http_x_cohort;
        cohort_weight beta $beta;
    }

${\ $t->origins }
    server {
        listen 127.0.0.1:$port;
        canary checkout;

        location / {
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }
    }
EOF
}

my %reqs = (
    ga   => [ map { { path => '/', headers => ['X-Tenant-Id' => $_] } }
              @tenants ],
    beta => [ map { { path => '/', headers => ['X-Tenant-Id' => $_,
                                               'X-Cohort' => 'beta'] } }
              @tenants ],
);

# the side of every tenant of a cohort at a weight, checked against the
# formula; returns the set on canary
sub canary_set {
    my ($cohort, $weight) = @_;

    my $res = $t->route_many($port, $reqs{$cohort}, clients => 2);
    my $reason = $cohort eq 'ga' ? 'hash' : 'cohort';
    my (%canary, @wrong);

    for my $i (0 .. $#tenants) {
        my $d = $res->[$i];
        my $want = CanaryTest::is_canary($SALT, $tenants[$i], $weight)
                   ? 'canary' : 'stable';

        push @wrong, "$tenants[$i]: want $want at weight $weight, got "
                     . join(' ', map { "$_=" . ($d->{$_} // '-') }
                                 qw(status side variant reason weight bucket))
            unless $d->{status} == 200 && $d->{side} eq $want
                   && $d->{variant} eq $want && $d->{weight} eq $weight
                   && $d->{reason} eq $reason;

        $canary{$tenants[$i]} = 1 if $d->{side} eq 'canary';
    }

    is(scalar @wrong, 0, "$cohort at $weight: nginx applies the new weight "
                         . "and every tenant lands where the formula says")
        or diag(join "\n", @wrong[0 .. ($#wrong < 9 ? $#wrong : 9)]);

    my $pct = sprintf '%.2f', 100 * keys(%canary) / $N;

    ok(abs($pct - $weight) <= 2,
       "$cohort at $weight: $pct% of $N tenants on canary");

    return \%canary;
}

my (%prev, %prev_w, %first);

sub step {
    my ($cohort, $w) = @_;

    my $cur = canary_set($cohort, $w);
    my ($prev, $pw) = ($prev{$cohort}, $prev_w{$cohort});

    if (!$prev || $w == $pw) {
        # first step, or no change for this cohort

    } elsif ($w > $pw) {
        my @lost = grep { !$cur->{$_} } keys %$prev;

        is(scalar @lost, 0,
           "$cohort ramp $pw -> $w: all " . keys(%$prev) . " canary tenants "
           . "stay on canary (" . keys(%$cur) . " now)")
            or diag("back on stable: @lost[0 .. ($#lost < 9 ? $#lost : 9)]");

    } else {
        my @added = grep { !$prev->{$_} } keys %$cur;

        is(scalar @added, 0, "$cohort ramp down $pw -> $w: canary only "
                             . "shrinks");

        is_deeply([sort keys %$cur], [sort keys %{$first{$cohort}{$w}}],
                  "$cohort back at $w: exactly the tenants of the first "
                  . "$w% are on canary again")
            if $first{$cohort}{$w};
    }

    $first{$cohort}{$w} ||= $cur;
    ($prev{$cohort}, $prev_w{$cohort}) = ($cur, $w);
}

my ($w0, $b0) = @{$steps[0]};

conf($w0, $b0);
$t->start;

my $master = $t->master_pid;
my @workers = $t->worker_pids;

step('ga', $w0);
step('beta', $b0);

my $step = 0;

for my $s (@steps[1 .. $#steps]) {
    my ($w, $b) = @$s;
    my ($old_w) = @{$steps[$step++]};

    conf($w, $b);

    # the first reload happens under traffic: no request may fail, and
    # each lands on its side at the old or at the new weight
    if ($step == 1) {
        # the ga tenants in turn, a connection each
        my $load = Traffic->start(port => $port, keep_alive => 0,
                                  seconds => 20, record => 1,
                                  tenant => sub { $tenants[$_[1] % $N] });

        sleep 0.3;
        $t->reload;
        sleep 0.3;

        my @lines = map { "$_->{tenant} " . ($_->{side} || '-')
                          . " $_->{status}\n" } @{$load->stop->{records}};

        my @bad = grep {
            my ($tenant, $side, $status) = split ' ';
            my %ok = map { (CanaryTest::is_canary($SALT, $tenant, $_)
                            ? 'canary' : 'stable') => 1 } $old_w, $w;
            $status != 200 || !$ok{$side};
        } @lines;

        ok(@lines > 20 && !@bad,
           scalar(@lines) . " requests during the reload $old_w -> $w: "
           . "all answered, each at the old or the new weight")
            or diag(join '', @bad[0 .. ($#bad < 9 ? $#bad : 9)]);

    } else {
        $t->reload;
    }

    my @now = $t->worker_pids;
    my %old = map { $_ => 1 } @workers;

    ok($t->master_pid == $master && !grep({ $old{$_} } @now),
       "reload to weight $w, beta $b: same master, all workers replaced");
    @workers = @now;

    step('ga', $w);
    step('beta', $b);
}

$t->stop;

done_testing;
