#!/usr/bin/perl

# Story: a plan with two notify receivers, real HTTP servers on
# loopback: "a" takes the receipts as JSON, signed with a secret; "b" a
# Slack message for two of the operations.  A healthy canary is walked to
# completion.  Every receipt the sidecar wrote to the stream arrives at
# "a" exactly once, byte for byte as in the stream, with an
# X-Canary-Signature that verifies with the secret (and not with another);
# "b" gets exactly the two operations it asked for, as {"text": ...} with
# the split, the decision, the stage and the weights.  The counts are in
# the sidecar's state.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(hmac_sha256_hex);
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);
use NotifyReceiver;

my $s = SidecarTest->new(name => 'notify');
$s->start;

my $a = NotifyReceiver->new($s->t, 'a')->start;
my $b = NotifyReceiver->new($s->t, 'b')->start;

my $secret = "s3cret-\x{e9}-key";
utf8::encode($secret);
my $secret_file = $s->prefix . '/notify.secret';
open my $fh, '>', $secret_file or die "$secret_file: $!";
print $fh "$secret\n";      # the line break is not part of it
close $fh;

my $plan = fast_plan();
delete $plan->{stages}[-1]{manual};     # to the end without an operator
$plan->{notify} = [
    { url => $a->url, format => 'json', secret_file => $secret_file },
    { url => $b->url, format => 'slack',
      events => ['rollout_started', 'deployment_complete'] },
];

$s->traffic(clients => 3, rate => 100);
$s->sidecar(plan => $plan);

$s->wait_for(sub { $s->hget('state') eq 'complete' }, 60, 'completed')
    or $s->show_log;

my @stream = grep { ($_->{by} // '') eq 'sidecar-a' } $s->receipts;
my %text = map { $_->[0] => $_->[1] }
           _stream_texts($s);

is_deeply [map { $_->{operation} } @stream],
    [qw(rollout_started canary_phase_complete traffic_promoted
        traffic_promoted deployment_complete)],
    'the walk wrote its five receipts';

# deliveries are made while the sidecar waits for its next step
$s->wait_for(sub { $a->delivered >= @stream && $b->delivered >= 2 }, 10,
             'the receivers got their messages')
    or $s->show_log;
sleep 1;    # and nothing more comes

my @got = $a->requests;
my %n;
$n{$_->{headers}{'x-canary-receipt-id'} // ''}++ for @got;

is_deeply [map { $_->{headers}{'x-canary-receipt-id'} } @got],
    [map { $_->{receipt_id} } @stream],
    'a: every receipt of the stream, once each, in order';
is_deeply [grep { $n{$_} != 1 } keys %n], [], 'a: no receipt twice';

for my $r (@got) {
    my $id = $r->{headers}{'x-canary-receipt-id'};
    my $op = $r->{headers}{'x-canary-event'} // '';

    is $r->{method}, 'POST', "a: $op: POST";
    is $r->{path}, '/hook/a', "a: $op: to the plan's URL";
    is $r->{headers}{'content-type'}, 'application/json',
        "a: $op: application/json";
    is $r->{body}, $text{$id}, "a: $op: the body is the receipt as in the "
                               . 'stream, byte for byte';
    is $r->{headers}{'x-canary-signature'},
        'sha256=' . hmac_sha256_hex($r->{body}, $secret),
        "a: $op: X-Canary-Signature verifies with the secret";
    isnt $r->{headers}{'x-canary-signature'},
        'sha256=' . hmac_sha256_hex($r->{body}, "$secret\n"),
        "a: $op: and not with another";
}

# the Slack receiver: only what it asked for, as a Slack message
my @slack = $b->requests;
my @msgs = map { decode_json($_->{body}) } @slack;

is scalar(@slack), 2, 'b: two messages';
is_deeply [map { $_->{headers}{'x-canary-event'} } @slack],
    [qw(rollout_started deployment_complete)],
    'b: the two operations of its events';
ok !exists $slack[0]{headers}{'x-canary-signature'},
    'b: no signature without a secret';
is_deeply [sort keys %{$msgs[0]}], ['text'], 'b: {"text": ...}';

like $msgs[0]{text}, qr/^\*canary api\*: rollout_started\n/,
    'b: the split and the decision first';
like $msgs[0]{text}, qr/^stage: canary$/m, 'b: the stage it started';
like $msgs[0]{text}, qr/^weight: 0%$/m, 'b: the weight';
like $msgs[1]{text}, qr/^stage: 50_percent -> 100_percent$/m,
    'b: the last stage, from and to';
like $msgs[1]{text}, qr/^weight: 50% -> 100%$/m, 'b: the weights';
like $msgs[1]{text}, qr/^receipt: $stream[-1]{receipt_id}$/m,
    'b: the receipt it stands for';
note "slack: $_->{text}" for @msgs;

# the counts, in the sidecar's state
$s->wait_for(sub {
    my $c = eval { decode_json($s->state_hash->{notify} // '') } || {};
    ($c->{sent} // 0) == @stream + 2;
}, 10, 'state: notify counts every message sent')
    or diag 'notify: ' . ($s->state_hash->{notify} // 'none');

is_deeply decode_json($s->state_hash->{notify}),
    { sent => @stream + 2, failed => 0, retries => 0, queued => 0 },
    'state: sent, failed, retries, queued';

like $s->sidecar_log, qr/notify\[0\]: http:\/\/127\.0\.0\.1:\d+, json signed, every event/,
    'the receivers in the log at the start';
unlike $s->sidecar_log, qr/not delivered|gave up|delivered again|queue is full/,
    'no failure to log';

$s->finish;

done_testing;


# receipt_id => the receipt's text, as the stream holds it
sub _stream_texts {
    my ($s) = @_;

    my @l = $s->redis('XRANGE', $s->key . ':receipts', '-', '+');
    my @r;

    for (my $i = 0; $i + 2 < @l + 0; $i += 3) {
        my $r = decode_json($l[$i + 2]);
        push @r, [$r->{receipt_id}, $l[$i + 2]];
    }

    return @r;
}
