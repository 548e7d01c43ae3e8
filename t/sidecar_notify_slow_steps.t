#!/usr/bin/perl

# Story: one nginx of the fleet hangs (accepts, never answers), so each
# step waits the 1s fetch timeout and takes longer than the plan's
# interval (250ms here; the default interval, 1s, is no longer than the
# fetch timeout either).  The rollout goes on with the nginx that
# answers, and the receipts it writes are still delivered to the plan's
# receiver, and counted in --listen's /metrics.  The loop's wait is
# where deliveries progress; before, a wait whose deadline had passed
# (a step that took its interval) skipped them altogether, so while an
# nginx hung not one notification went out.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Socket::INET;
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);
use NotifyReceiver;

my $s = SidecarTest->new(name => 'notify-slow-steps');
my $t = $s->t;
$s->start;

my $rx = NotifyReceiver->new($t, 'a')->start;
$rx->mode('ok');

# an "nginx" that accepts and never answers
my $hang = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
    LocalPort => $t->port('hang'), Listen => 64, ReuseAddr => 1)
    or die "listen: $!";

$s->traffic(clients => 3, rate => 100);

my $plan = fast_plan();
$plan->{notify} = [{ url => $rx->url, format => 'json' }];
my $lp = $t->port('listen');
$s->sidecar(plan => $plan, args => ['--listen', "127.0.0.1:$lp",
    '--status', 'http://127.0.0.1:' . $t->port('hang') . '/canary_status']);

$s->wait_for(sub { grep { $_ eq 'canary_phase_complete' } $s->operations },
             40, 'the rollout goes on with the nginx that answers')
    or $s->show_log;

my $res = $t->get($lp, '/metrics', undef, timeout => 5);
my ($took) = ($res->{content} // '')
    =~ /^canary_sidecar_last_step_duration_seconds\{[^}]*\} (\S+)$/m;
cmp_ok($took // 0, '>=', 0.9, "a step takes the fetch timeout ($took s), "
       . 'over the interval of 250ms');

my @ops = $s->operations;
$s->wait_for(sub { scalar($rx->delivered) >= 2 }, 15,
             'its receipts are delivered: ' . join(', ', @ops))
    or diag('the receiver got ' . scalar(my @r = $rx->requests)
            . ' request(s)');

my %got = map { (JSON::PP::decode_json($_->{body})->{operation} => 1) }
          $rx->delivered;
ok($got{rollout_started} && $got{canary_phase_complete},
   'rollout_started and canary_phase_complete delivered');

my $sent;
$s->wait_for(sub {
    my $r = $t->get($lp, '/metrics', undef, timeout => 5);
    ($sent) = ($r->{content} // '')
        =~ /^canary_sidecar_notifications_total\{split="api",result="sent"\} (\d+)$/m;
    ($sent // 0) >= 2 }, 10,
    'canary_sidecar_notifications_total{result="sent"} counts them');

$s->finish;
close $hang;

done_testing;
