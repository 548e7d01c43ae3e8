#!/usr/bin/perl

# Story: an operator looks for receipts with canary-ctl receipts SPLIT
# [N] [--op OPERATION] [--since DURATION], against a real Redis.  The
# stream holds receipts of three hours ago, ninety and twenty minutes ago
# (written with those stream IDs: --since reads the ID's time), a
# rollback buried under 1200 newer receipts (more than one 500-entry
# batch of the script), and fresh ones canary-ctl writes.  --op keeps
# only one operation, --since only the receipts of the last DURATION,
# both together both, N counts the receipts that match, newest first;
# without the options the command prints what it always did.  A bad
# --op or --since, or either on another command, exits 2.  canary-ctl
# evidence refuses a bad receipt id and says when there is no snapshot.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use CanaryTest;
use RedisStory qw(report_node node_record ctl_run);

my $KEY = 'canary:app';

my $t = CanaryTest->new(name => 'ctl-receipts');
my $redis = '127.0.0.1:' . $t->redis_start;

report_node($t, 'app', 'web-1', record => node_record(interval_ms => 600000));

sub r { $t->redis_cli(@_) }

sub ctl {
    my ($rc, $out, $err) = ctl_run($t, $redis, [@_]);
    return ($rc, $out, $err);
}

# the receipts printed, decoded
# the receipts --json prints; and without --json, as many lines for
# people, each with its receipt's time and operation
sub printed {
    my ($rc, $out, $err) = ctl(@_, '--json');
    is $rc, 0, "canary-ctl @_ --json" or diag $err;
    my @r = map { decode_json($_) } grep { length } split /\n/, $out;

    ($rc, $out, $err) = ctl(@_);
    is $rc, 0, "canary-ctl @_" or diag $err;
    my @l = grep { length } split /\n/, $out;
    my $iso = qr/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/;
    # a receipt by hand here has no timestamp: any time (the stream's)
    is_deeply [ map { /^($iso) (\S+) / ? "$1 $2" : $_ } @l ],
              [ map { ($_->{timestamp} // ($l[$_->{i}] =~ /^($iso)/)[0] // '')
                      . " $_->{operation}" }
                map { { %{ $r[$_] }, i => $_ } } 0 .. $#r ],
        "canary-ctl @_: one line a receipt, its time and operation";
    return @r;
}

my ($sec) = r('TIME');
my $now = $sec * 1000;

# old receipts, by hand, with the stream IDs of their time
sub old {
    my ($ago_ms, $op, $seq) = @_;
    my $id = sprintf '%d-%d', $now - $ago_ms, $seq // 0;
    r('XADD', "$KEY:receipts", $id, 'receipt',
      encode_json({ operation => $op, split => 'app', tag => "$op-$ago_ms",
                    n => $seq // 0 }));
}

old(3 * 3600_000, 'rollback_executed');
old(90 * 60_000, 'weight_set');
old(20 * 60_000, 'traffic_promoted');

# 1200 receipts after them (ten minutes ago): the filters read past them
for my $i (1 .. 1200) {
    old(10 * 60_000, 'tenants_pinned', $i);
}

# fresh ones, by canary-ctl
for my $args (['set-weight', 'app', '5'], ['pause', 'app'],
              ['resume', 'app'], ['set-weight', 'app', '10'])
{
    my ($rc, undef, $err) = ctl(@$args);
    is $rc, 0, "canary-ctl @$args" or diag $err;
}


# ---- --op ---------------------------------------------------------------

my @r = printed('receipts', 'app', '--op', 'weight_set');
is_deeply [map { $_->{to_weight} // $_->{tag} } @r], [10, 5, 'weight_set-5400000'],
    '--op weight_set: the three weight_set, newest first';

@r = printed('receipts', 'app', '1', '--op', 'weight_set');
is scalar @r, 1, 'N counts the receipts that match';
is $r[0]{to_weight}, 10, 'the newest one';

@r = printed('receipts', 'app', '--op', 'rollback_executed');
is_deeply [map { $_->{tag} } @r], ['rollback_executed-10800000'],
    '--op finds a receipt under 1200 newer ones';

@r = printed('receipts', 'app', '--op=rollout_paused');
is_deeply [map { $_->{operation} } @r], ['rollout_paused'], '--op=OPERATION';

@r = printed('receipts', 'app', '--op', 'split_reset');
is scalar @r, 0, 'no receipt of an operation that never happened: none';


# ---- --since ------------------------------------------------------------

@r = printed('receipts', 'app', '20', '--since', '5m');
is_deeply [map { $_->{operation} } @r],
    [qw(weight_set rollout_resumed rollout_paused weight_set)],
    '--since 5m: only the fresh receipts';

@r = printed('receipts', 'app', '2000', '--since', '30m');
is scalar @r, 4 + 1200 + 1, '--since 30m: and those of 10 and 20 minutes ago';
is $r[-1]{tag}, 'traffic_promoted-1200000', 'the oldest of them, last';

@r = printed('receipts', 'app', '2000', '--since', '2h');
is $r[-1]{tag}, 'weight_set-5400000', '--since 2h: ninety minutes ago too';

@r = printed('receipts', 'app', '2000', '--since', '1h30m30s');
is $r[-1]{tag}, 'weight_set-5400000', '--since 1h30m30s';

@r = printed('receipts', 'app', '2000', '--since=1d');
is $r[-1]{tag}, 'rollback_executed-10800000', '--since 1d: all of them';
is scalar @r, 4 + 1200 + 3, 'every receipt of the day';

@r = printed('receipts', 'app', '3', '--since', '1d');
is_deeply [map { $_->{operation} } @r],
    [qw(weight_set rollout_resumed rollout_paused)],
    'N with --since: the newest N';


# ---- both ---------------------------------------------------------------

@r = printed('receipts', 'app', '--op', 'weight_set', '--since', '1h');
is_deeply [map { $_->{to_weight} } @r], [10, 5],
    '--op weight_set --since 1h: the fresh two, not the one of 90 minutes';

@r = printed('receipts', 'app', '--op', 'rollback_executed', '--since', '2h');
is scalar @r, 0, 'the rollback of three hours ago is not within 2h';


# ---- without them, as before -------------------------------------------

@r = printed('receipts', 'app', '2');
is_deeply [map { $_->{operation} } @r], [qw(weight_set rollout_resumed)],
    'receipts app 2: the last two, as always';


# ---- bad arguments ------------------------------------------------------

for my $bad (['receipts', 'app', '--since', '5x'],
             ['receipts', 'app', '--since', '30m2h'],
             ['receipts', 'app', '--since', '0m'],
             ['receipts', 'app', '--since'],
             ['receipts', 'app', '--op', 'Weight-Set'],
             ['receipts', 'app', '--op'],
             ['status', 'app', '--op', 'weight_set'],
             ['set-weight', 'app', '5', '--since', '1h'])
{
    my ($rc, $out, $err) = ctl(@$bad);
    is $rc, 2, "canary-ctl @$bad: exit 2";
    like $err, qr/usage: canary-ctl/, 'with the usage line';
}

for my $bad (['evidence', 'app'],
             ['evidence', 'app', 'not-a-receipt-id'],
             ['evidence', 'app', '0b5e2f3c-1111-4222-8333-444455556666', 'x'],
             ['evidence', 'app', '0b5e2f3c-1111-4222-8333-444455556666',
              '--op', 'weight_set'],
             ['pins', 'app', '--json'])
{
    my ($rc, $out, $err) = ctl(@$bad);
    is $rc, 2, "canary-ctl @$bad: exit 2";
}


# ---- evidence: none, or not a snapshot ----------------------------------

my $id = '0b5e2f3c-1111-4222-8333-444455556666';
my ($rc, $out, $err) = ctl('evidence', 'app', $id);
is $rc, 1, 'evidence of a receipt without a snapshot: exit 1';
like $err, qr/no evidence snapshot canary:app:evidence:$id/, 'saying so';

r('SET', "$KEY:evidence:$id", "not zlib\x01");
($rc, $out, $err) = ctl('evidence', 'app', $id, '--json');
is $rc, 1, 'a key that is no snapshot: exit 1';
like $err, qr/is not an evidence snapshot: not zlib/, 'saying so';

$t->stop;

done_testing;
