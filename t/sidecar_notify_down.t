#!/usr/bin/perl

# Story: the notify receiver fails when a rollout starts: it answers
# 500 for 20 seconds, then is down (its port closed) until 55 seconds
# after the first receipt: about a minute, chosen between two attempts of the backoff schedule (1s, 2s,
# 4s, ... up to 30s between attempts: tries at 0, 1, 3, 7, 15, 31 and
# 61s after the event), so that the receiver is back well before the
# attempt at 61s and the test does not race it.  The rollout goes on to
# completion meanwhile, not waiting for anyone.  When the receiver is
# back it gets every receipt, once each, in order; the failure was logged
# once per message, not per attempt, and the recovery once; the state's
# counts say so.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);
use NotifyReceiver;

my $DOWN = 55;

my $s = SidecarTest->new(name => 'notify-down');
$s->start;

my $rx = NotifyReceiver->new($s->t, 'down');
$rx->mode('500');
$rx->start;

my $plan = fast_plan();
delete $plan->{stages}[-1]{manual};
$plan->{notify} = [{ url => $rx->url }];

$s->traffic(clients => 3, rate => 100);
$s->sidecar(plan => $plan);

my $first;

$s->wait_for(sub { $s->operations and $first = time }, 15,
             'the rollout started')
    or $s->show_log;

$s->wait_for(sub { $s->hget('state') eq 'complete' }, 60,
             'completed while the receiver is down: nobody waits for it')
    or $s->show_log;

my @stream = grep { ($_->{by} // '') eq 'sidecar-a' } $s->receipts;
is scalar(@stream), 5, 'five receipts';

# the state written with the last receipt counts the messages before it
$s->wait_for(sub { (_counts($s)->{queued} // 0) == 5 }, 5,
             'state: five queued');

my $c = _counts($s);
is $c->{sent}, 0, 'state: nothing sent while down';
cmp_ok $c->{retries}, '>=', 1, "state: retried ($c->{retries} so far)";

sleep 0.1 while time < $first + 20;
$rx->stop;
note sprintf 'receiver down %.1fs after the first receipt', time - $first;

sleep 0.1 while time < $first + $DOWN;
$rx->mode('ok');
$rx->start;
my $back = time;
note sprintf 'receiver back %.1fs after the first receipt', $back - $first;

$s->wait_for(sub { $rx->delivered >= 5 }, 40,
             'every message arrives once the receiver is back')
    or $s->show_log;
my $all = time;
sleep 1;

note sprintf 'all delivered %.1fs after the receiver came back',
             $all - $back;

my @e500 = grep { $_->{mode} eq '500' } $rx->requests;
note 'answered 500 at ' . join(', ', map { sprintf '%.1f', $_->{at} - $first }
                                      @e500) . 's after the first receipt';

is_deeply [map { $_->{headers}{'x-canary-receipt-id'} } $rx->delivered],
    [map { $_->{receipt_id} } @stream],
    'every receipt delivered once, in order';
is_deeply [map { $_->{headers}{'x-canary-receipt-id'} } @e500],
    [($stream[0]{receipt_id}) x @e500],
    'while it answered 500: only the first message was tried, again '
    . 'and again (one at a time per receiver, in order)';
cmp_ok scalar(@e500), '>=', 4,
    'attempts at 0, 1, 3, 7, 15s: answered 500 (' . @e500 . ')';

my $log = $s->sidecar_log;
my @failed = $log =~ /notify\[0\] [^ ]+: receipt (\S+) \(\w+\) not delivered: HTTP 500;/g;
my @again = $log =~ /notify\[0\] [^ ]+: delivered again/g;

$c = _counts($s);

is_deeply \@failed, [$stream[0]{receipt_id}],
    'the failure logged once (HTTP 500), for the message that was tried, '
    . 'not again when the port closed';
unlike $log, qr/not delivered: (?!HTTP 500)/, 'no other failure line';
cmp_ok $c->{retries}, '>=', 6, "retried $c->{retries} times: 6 or more "
                              . 'attempts failed, one log line';
is scalar(@again), 1, 'the recovery logged once';
unlike $log, qr/gave up/, 'nothing given up';
like $log, qr{notify\[0\] http://127\.0\.0\.1:\d+: }, 'the log names the '
    . 'receiver by its origin, not its path';

$s->wait_for(sub { (_counts($s)->{sent} // 0) == 5 }, 10,
             'state: five sent')
    or diag explain _counts($s);
is_deeply _counts($s),
    { sent => 5, failed => 0, retries => $c->{retries}, queued => 0 },
    'state: sent 5, failed 0, queued 0';

$s->finish;

done_testing;


sub _counts {
    my ($s) = @_;

    return eval { decode_json($s->state_hash->{notify} // '') } || {};
}
