#!/usr/bin/perl

# Story: an operator asks canary-ctl for receipts and evidence when
# things are not as the sidecar left them.
#
#   * The stream holds an entry somebody wrote by hand whose receipt is
#     no JSON: "receipts SPLIT --since 1h" still prints the last hour
#     (it took the first line that was no "{" for an error reply and
#     exited 1, "Redis refused").
#   * "--op rollback" (a typo of rollback_executed) is refused, exit 2,
#     with the operations there are (it printed nothing, exit 0: as if
#     there had been no rollback); every operation of the schema is
#     accepted.
#   * Redis is down: "evidence" says it cannot reach Redis (it said there
#     was no snapshot, as if the evidence were gone).
#   * A snapshot that decompresses to JSON of another shape: a clear
#     error naming the key, exit 1 (perl died: "cannot reach Redis").
#   * A snapshot whose strings hold control bytes (an escape sequence in
#     a node's name): the table prints none of them to the terminal,
#     nor C1 or bidi controls or bytes that are no UTF-8 (as receipts'
#     tty()), as JSON escapes or raw.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Compress::Zlib qw(compress);
use JSON::PP;
use Test::More;
use CanaryTest;
use RedisStory qw(ctl_run);

my $t = CanaryTest->new(name => 'ctl-receipts-odd');
my $redis = '127.0.0.1:' . $t->redis_start;

sub r { $t->redis_cli(@_) }

sub ctl {
    my ($rc, $out, $err) = ctl_run($t, $redis, [@_]);
    return ($rc, $out, $err);
}

# ---- receipts --since over an entry that is no JSON ----------------------

r('XADD', 'canary:app:receipts', '*', 'receipt',
  '{"operation":"weight_set","n":1}');
r('XADD', 'canary:app:receipts', '*', 'receipt', 'written by hand');
r('XADD', 'canary:app:receipts', '*', 'note', 'no receipt field');
r('XADD', 'canary:app:receipts', '*', 'receipt',
  '{"operation":"rollback_executed","n":2}');

my ($rc, $out, $err) = ctl('receipts', 'app', '--since', '1h', '--json');
is $rc, 0, 'receipts --since 1h over an entry that is no JSON: exit 0'
    or diag $err;
is $out, qq({"operation":"rollback_executed","n":2}\nwritten by hand\n)
         . qq({"operation":"weight_set","n":1}\n),
    'the last hour\'s receipts as the stream has them, newest first';

($rc, $out, $err) = ctl('receipts', 'app', '--op', 'rollback_executed', '--json');
is $rc, 0, '--op rollback_executed: exit 0' or diag $err;
is $out, qq({"operation":"rollback_executed","n":2}\n), 'the rollback';

# --json: what the old default printed (for people, a split Redis has
# nothing of exits 1: t/ctl_hostile.t)
($rc, $out, $err) = ctl('receipts', 'empty', '--since', '1h', '--json');
is_deeply [$rc, $out], [0, ''], 'no stream: nothing, exit 0' or diag $err;

r('SET', 'canary:str:receipts', 'x');
($rc, $out, $err) = ctl('receipts', 'str', '--since', '1h');
is $rc, 1, 'a receipts key that is no stream: exit 1';
like $err, qr/WRONGTYPE/, 'with Redis\' error';

# ---- --op that no writer writes ------------------------------------------

($rc, $out, $err) = ctl('receipts', 'app', '--op', 'rollback');
is $rc, 2, '--op rollback (a typo): exit 2';
like $err, qr/unknown --op "rollback": one of .*rollback_executed/,
    'naming the operations there are';
is $out, '', 'and printing nothing';

my $schema = do {
    local $/;
    open my $fh, '<', "$CanaryTest::ROOT/docs/receipt.schema.json" or die;
    decode_json(<$fh>);
};
my @ops = @{ $schema->{properties}{operation}{enum} };
my @refused = grep { (ctl('receipts', 'app', '--op', $_))[0] != 0 } @ops;
is_deeply \@refused, [], 'every operation of the schema ('
                         . scalar(@ops) . ') is accepted';

# ---- evidence: Redis down, another shape, control bytes ------------------

my $id = '0a1b2c3d-0000-4000-8000-000000000001';
my $key = "canary:app:evidence:$id";

sub snapshot {
    my ($doc) = @_;
    my $z = compress(ref $doc ? encode_json($doc) : $doc);
    my $file = $t->prefix . '/tmp/z';
    open my $fh, '>', $file or die;
    print $fh $z;
    close $fh;
    system("redis-cli -h 127.0.0.1 -p " . $t->redis_port
           . " -x SET $key < $file >/dev/null") == 0 or die;
}

snapshot({ receipt_id => $id, operations => ['rollback_executed'] });

($rc, $out, $err) = ctl_run($t, '127.0.0.1:1', ['evidence', 'app', $id]);
is $rc, 1, 'Redis down: exit 1';
like $err, qr/cannot reach Redis at 127\.0\.0\.1:1/, 'it says so';
unlike $err, qr/no evidence snapshot/, 'not that there is no snapshot';

for my $odd ({ release => 'v1' }, { operations => 'x' },
             { nodes => [1] }, { nodes => [{ node => 'a', stable => [1] }] },
             { checks => [] }, { stage_evidence => 3 })
{
    snapshot($odd);
    my $what = encode_json($odd);
    ($rc, $out, $err) = ctl('evidence', 'app', $id);
    is $rc, 1, "a snapshot $what: exit 1";
    like $err, qr/\Q$key\E is not a snapshot canary-sidecar writes/,
        'a clear error naming the key';
    unlike $err, qr/cannot reach Redis/, 'not that Redis is down';
    is $out, '', 'no half table';

    ($rc, $out) = ctl('evidence', 'app', $id, '--json');
    is_deeply [$rc, $out], [0, "$what\n"], '--json prints it as it is';
}

snapshot({ receipt_id => "x\e[2J", operations => ["a\e]0;owned\a"],
           reason => "two\nlines", release => { stable => "s\e[31m",
                                                 canary => 'c' },
           nodes => [{ node => "web\e[1m", stable => { requests => 3 } }],
           checks => { "k\e[0m" => { status => "PASS\r" } } });
($rc, $out, $err) = ctl('evidence', 'app', $id);
is $rc, 0, 'a snapshot with control bytes in its strings: printed'
    or diag $err;
unlike $out, qr/[\x00-\x08\x0b-\x1f\x7f]/, 'without a control byte';
like $out, qr/^reason: two\?lines$/m, 'each one a "?"';
like $out, qr/web\?\[1m/, 'a node name\'s too';

# C1 and bidi controls, bytes that are no UTF-8, as tty() cleans them for
# receipts and status: JSON escapes (\u009b, \u202e) and raw bytes
my $evil = "ESC\e[31m CSI\x{9b}31m NEL\x{85} RLO\x{202e} end";
snapshot(JSON::PP->new->ascii->encode(
    { receipt_id => $evil, operations => [$evil], reason => $evil,
      nodes => [{ node => $evil, stable => { requests => "9\x{9b}2J" } }],
      checks => { $evil => { status => $evil } } }));
($rc, $out, $err) = ctl('evidence', 'app', $id);
is $rc, 0, 'a snapshot with C1 and bidi controls: printed' or diag $err;
terminal_safe($out, 'JSON escapes');
like $out, qr/^reason: ESC\?\[31m CSI\?31m NEL\? RLO\? end$/m,
    'each one a "?"';
snapshot(qq({"reason":"raw\x9b2J \xc2\x85 \xe2\x80\xae \xff \xc3\xa9"}));
($rc, $out, $err) = ctl('evidence', 'app', $id);
terminal_safe($out, 'raw bytes');
like $out, qr/^reason: raw\?2J \? \? \? \xc3\xa9$/m,
    'each one a "?", UTF-8 kept';

# more errors than requests: the errors column shows the requests, as
# cleaned as the requests column
snapshot(JSON::PP->new->ascii->encode(
    { reason => 'torn', nodes => [{ node => 'web1',
      stable => { requests => "9\x{9b}2J", errors_5xx => 50 } }] }));
($rc, $out, $err) = ctl('evidence', 'app', $id);
is $rc, 0, 'more errors than requests, a control in requests: printed'
    or diag $err;
terminal_safe($out, 'the errors column');
like $out, qr/^  web1 +stable +9\?2J +9\?2J /m, 'the errors as the requests';

# text a terminal shows as it is: valid UTF-8, no C0 (but \n), DEL, C1
# or bidi controls
sub terminal_safe {
    my ($s, $name) = @_;
    return fail("$name: not valid UTF-8") unless utf8::decode($s);
    my $c = '\x00-\x09\x0b-\x1f\x7f-\x9f\x{200e}\x{200f}\x{202a}-\x{202e}'
            . '\x{2066}-\x{2069}';
    my @bad = $s =~ /([$c])/g;
    ok !@bad, "$name: no control characters"
        or diag 'found: ' . join ' ', map { sprintf 'U+%04X', ord } @bad;
}

done_testing;
