#!/usr/bin/perl

# Story: what canary-ctl prints for people comes from Redis, which anyone
# with its address writes; an operator's terminal must get text, never
# escape sequences, and one line per receipt.
#
#   * A receipt (by hand or by canary-ctl) whose strings hold ESC, C1
#     controls (U+0080..U+009F: CSI, NEL, as xterm reads them in UTF-8),
#     a raw byte 0x9b, bidi overrides or bytes that are no UTF-8: the
#     receipts line and status's last receipt have none of them.
#   * A huge reason is cut: the line stays a line a person reads.
#   * status prints the hash: a value with ESC and a newline (an actor's
#     name) is one line, and the lines after it keep their meaning.
#   * Tenants with such characters: pin, unpin and pins print them as
#     JSON strings, escaped.
#   * A --redis (or CANARY_REDIS) with a password in it (a URL) is
#     refused, and no message prints the password.
#   * pins and receipts (for people) of a split that Redis has nothing
#     of (a typo: no hash, no pins, no receipts, no live nginx) exit 1
#     and say so, naming the splits the fleet reports, rather than
#     "canary: 0" or nothing with exit 0.
#   * A wrong password (or none where Redis wants one) is said so, not
#     only Redis' "NOAUTH Authentication required.".
#   * A pin of so many tenants that redis-cli cannot be started (over
#     the system's limit on arguments, though canary-ctl was) says
#     nothing was written, not that Redis was not reached.
#   * --db N that Redis does not have (redis-cli says "SELECT failed"
#     on stderr and goes on in db 0): nothing read or written in db 0,
#     exit 1 with Redis' error.
#   * A change whose reply is lost (Redis closed the connection after
#     running it) does not say "cannot reach Redis": it may be written.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Select;
use IO::Socket::INET;
use POSIX ();
use JSON::PP;
use Test::More;
use CanaryTest;
use RedisStory qw(ctl_run report_node node_record);

my $t = CanaryTest->new(name => 'ctl-hostile');
my $redis = '127.0.0.1:' . $t->redis_start;

sub r { $t->redis_cli(@_) }

sub ctl { ctl_run($t, $redis, [@_]) }

# text a terminal shows as it is: valid UTF-8, no C0, DEL, C1 or bidi
# controls
sub terminal_safe {
    my ($s, $name) = @_;
    my $u = $s;

    unless (utf8::decode($u)) {
        return fail("$name: not valid UTF-8");
    }
    my $c = '\x00-\x09\x0b-\x1f\x7f-\x9f\x{200e}\x{200f}\x{202a}-\x{202e}'
            . '\x{2066}-\x{2069}';
    my @bad = $u =~ /([$c])/g;
    ok !@bad, "$name: no control characters"
        or diag 'found: ' . join ' ', map { sprintf 'U+%04X', ord } @bad;
}

my $evil = "a\e[31mESC \x{9b}31mCSI \x{85}NEL \x{202e}RLO end";

# ---- receipts: by hand, and by canary-ctl --------------------------------

r('XADD', 'canary:h:receipts', '*', 'receipt',
  JSON::PP->new->ascii->encode({
      timestamp => '2026-11-22T02:10:11Z', operation => "weight_set$evil",
      split => 'h', generation => 3, by => "mallory$evil",
      from_stage => $evil, to_stage => 's2', from_weight => 1,
      to_weight => 2, tenants => [$evil], side => $evil, reason => $evil }));
# a raw byte 0x9b (no UTF-8, no JSON escape): CSI to an 8-bit terminal
r('XADD', 'canary:h:receipts', '*', 'receipt',
  qq({"operation":"weight_set","generation":4,"by":"x\x9b31m",)
  . qq("reason":"raw\x9b2J\xff"}));
my ($rc, $out, $err) = ctl('set-weight', 'h', '5', '--force', '--reason',
                           "by ctl \x9b31m \xc2\x85 \xe2\x80\xae");
is $rc, 0, 'set-weight with such a reason: exit 0' or diag $err;

($rc, $out, $err) = ctl('receipts', 'h');
is $rc, 0, 'receipts h: exit 0' or diag $err;
my @lines = split /\n/, $out, -1;
is scalar(@lines), 4, 'three receipts, three lines (and the last newline)';
terminal_safe($out, 'receipts h');
like $lines[2], qr/ by mallory\S+/, 'the by of the hostile receipt is there';

($rc, $out, $err) = ctl('status', 'h');
is $rc, 0, 'status h: exit 0' or diag $err;
terminal_safe($out, 'status h');

# ---- receipts --json: the exit status is the command's -------------------

# an entry with another field after the receipt, one with no receipt
r('XADD', 'canary:odd2:receipts', '*', 'receipt', '{"operation":"x"}',
  'note', 'by hand');
($rc, $out, $err) = ctl('receipts', 'odd2', '--json');
is $rc, 0, 'receipts --json, a field after the receipt: exit 0' or diag $err;
is $out, qq({"operation":"x"}\n), 'the receipt';
r('XADD', 'canary:odd2:receipts', '*', 'note', 'no receipt');
($rc, $out, $err) = ctl('receipts', 'odd2', '1', '--json');
is $rc, 0, 'receipts 1 --json, the last entry no receipt: exit 0'
    or diag $err;
is $out, '', 'nothing printed';

# ---- a huge reason ---------------------------------------------------------

r('XADD', 'canary:huge:receipts', '*', 'receipt', encode_json({
    operation => 'weight_set', generation => 1, by => 'x',
    reason => 'y' x 100_000 }));
($rc, $out, $err) = ctl('receipts', 'huge');
is $rc, 0, 'receipts of a 100 kB reason: exit 0' or diag $err;
cmp_ok length($out), '<', 2000, 'the line is cut (' . length($out) . ')';
like $out, qr/reason: y+\.\.\. \(100000 bytes\)\n\z/,
    'and says how long the reason was';

# ---- status: the hash's values ----------------------------------------

($rc, $out, $err) = ctl_run($t, $redis, ['set-weight', 'st', '5', '--force'],
                            CANARY_ACTOR => "eve\e]0;pwned\a\nstate x\x9b");
is $rc, 0, 'a change by a strange actor: exit 0' or diag $err;
($rc, $out, $err) = ctl('status', 'st');
is $rc, 0, 'status st: exit 0' or diag $err;
terminal_safe($out, 'status st');
like $out, qr/^  pins           canary 0, stable 0$/m,
    'the pins line is the pins line';
like $out, qr/^  last receipt   \S+Z weight_set /m, 'the last receipt too';
like $out, qr/^  updated_at     \S+Z$/m, 'the field after it too';

# ---- tenants ------------------------------------------------------------

my @t = ("c1\xc2\x9b31m", "nel\xc2\x85", "rlo\xe2\x80\xae");
($rc, $out, $err) = ctl('pin', 'h', 'canary', '--force', @t);
is $rc, 0, 'pin such tenants: exit 0' or diag $err;
terminal_safe($out, 'pin');
like $out, qr/^    "c1\\u009b31m"$/m, 'a C1 control as a JSON escape';
like $out, qr/^    "rlo\\u202e"$/m, 'a bidi override as a JSON escape';
($rc, $out, $err) = ctl('pins', 'h', 'canary');
is $rc, 0, 'pins h canary: exit 0' or diag $err;
terminal_safe($out, 'pins');
is $out, "\"c1\\u009b31m\"\n\"nel\\u0085\"\n\"rlo\\u202e\"\n",
    'pins: each as a JSON string, sorted';
($rc, $out, $err) = ctl('unpin', 'h', '--force', @t);
is $rc, 0, 'unpin them: exit 0' or diag $err;
terminal_safe($out, 'unpin');
is_deeply [ r('SMEMBERS', 'canary:h:pin:canary') ], [],
    'the very tenants were unpinned';

# ---- the value before a change -------------------------------------------

r('HSET', 'canary:h', 'weight', "\xc2\x9b31m", 'state', "\xe2\x80\xaex");
($rc, $out, $err) = ctl('pause', 'h', '--force');
is $rc, 0, 'pause: exit 0' or diag $err;
terminal_safe($out, 'pause');
($rc, $out, $err) = ctl('set-weight', 'h', '7', '--force');
terminal_safe($out, 'set-weight');

# ---- a password in the address -------------------------------------------

my ($port) = $redis =~ /:(\d+)$/;
for my $case ([['--redis', "redis://:s3cret\@127.0.0.1:$port", 'status', 'h']],
              [['--redis', "u:s3cret\@127.0.0.1:$port", 'status', 'h']],
              [['status', 'h'], CANARY_REDIS => "redis://u:s3cret\@x:$port/0"],
              [['--sentinel', "u:s3cret\@127.0.0.1:$port", '--master', 'm',
                'status', 'h']])
{
    my ($args, %env) = @$case;
    ($rc, $out, $err) = ctl_run($t, $redis, $args, %env);
    is $rc, 2, "canary-ctl @$args: exit 2 (a usage error)";
    unlike $err, qr/s3cret/, 'the password is not printed' or diag $err;
    like $err, qr/--password-file/, 'says where a password goes';
}

# ---- a split Redis has nothing of: a typo ----------------------------

report_node($t, 'api', 'web-1', record => node_record(interval_ms => 600000));
for my $args (['pins', 'ap'], ['pins', 'ap', 'canary'], ['receipts', 'ap'],
              ['receipts', 'ap', '--since', '1h'])
{
    ($rc, $out, $err) = ctl(@$args);
    is $rc, 1, "canary-ctl @$args, a split Redis has nothing of: exit 1";
    is $out, '', 'nothing on stdout';
    is $err, qq{canary-ctl: Redis at $redis has nothing of split "ap" (no }
             . 'hash, pins, receipts or live nginx): a typo? the fleet '
             . "reports: api\n", 'says so, and the splits there are';
}
($rc, $out, $err) = ctl('receipts', 'ap', '--json');
is "$rc $out $err", '0  ', 'receipts --json: as it always was (tools)';
# a split with a hash only (before its deploy), pins only, receipts only
r('HSET', 'canary:h1', 'weight', '0');
r('SADD', 'canary:p1:pin:stable', 'x');
r('XADD', 'canary:r1:receipts', '*', 'receipt', '{}');
for my $args (['pins', 'h1'], ['receipts', 'h1'], ['pins', 'p1'],
              ['receipts', 'p1'], ['pins', 'r1'], ['receipts', 'r1'],
              ['pins', 'api'], ['receipts', 'api'])
{
    ($rc, $out, $err) = ctl(@$args);
    is "$rc $err", '0 ', "canary-ctl @$args, a split Redis knows: exit 0";
}

# ---- a --db that Redis does not have ------------------------------------

my ($gen, $weight) = r('HMGET', 'canary:h', 'generation', 'weight');
for my $args (['set-weight', 'h', '9', '--force'], ['status', 'h'],
              ['pins', 'h'], ['receipts', 'h'], ['receipts', 'h', '--json'],
              ['receipts', 'h', '--since', '1h', '--json'], ['fleet', 'h'],
              ['unpin', 'h', '--force', 'x'])
{
    ($rc, $out, $err) = ctl('--db', '99', @$args);
    is $rc, 1, "canary-ctl --db 99 @$args (16 databases): exit 1";
    like $err, qr/DB index is out of range/, 'with Redis\' error'
        or diag "$out$err";
}
is r('HGET', 'canary:h', 'generation'), $gen, 'nothing written in db 0';
is r('HGET', 'canary:h', 'weight'), $weight, 'the weight of db 0 stays';

# ---- a pin over the system's limit on arguments --------------------------

# canary-ctl's own arguments just under ARG_MAX (each string, its NUL and
# its pointer count, the environment too): redis-cli's, the change's
# script (14 kB) more, are over it
chomp(my $argmax = `getconf ARG_MAX 2>/dev/null` // '');
SKIP: {
    skip 'optional: no getconf ARG_MAX', 4 unless $argmax =~ /^\d+$/;
    my $env = 0;
    $env += length($_) + length($ENV{$_}) + 10 for keys %ENV;
    my $n = int(($argmax - 7000 - $env - 1000) / (256 + 1 + 8));
    my @many = map { sprintf 'x%0255d', $_ } 1 .. $n;
    ($rc, $out, $err) = ctl('pin', 'e2big', 'canary', '--force', @many);
    is $rc, 1, "a pin of $n tenants of 256 bytes: exit 1";
    like $err, qr/^canary-ctl:\ could\ not\ start\ redis-cli\ for\ the\ change
                  \ of\ e2big\ \(exit\ 126\):\ nothing\ written/x,
        'says redis-cli did not start, nothing written' or diag $err;
    unlike $err, qr/cannot reach|may have been written/,
        'not that Redis was not reached, or may be written';
    is r('EXISTS', 'canary:e2big'), 0, 'nothing was written';
}

# ---- the reply of a change lost -----------------------------------------

# a proxy: its first connection reaches Redis, which runs the change, and
# is closed before the reply; the connections after it pass
my $ls = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                               Listen => 5, ReuseAddr => 1) or die $!;
my $proxy = '127.0.0.1:' . $ls->sockport;
my $ppid = fork // die "fork: $!";
if ($ppid == 0) {
    # CanaryTest's handler would run the test's END blocks here
    $SIG{TERM} = $SIG{INT} = 'DEFAULT';
    my $drop = 1;
    while (my $c = $ls->accept) {
        my $s = IO::Socket::INET->new($redis) or POSIX::_exit(1);
        my $sel = IO::Select->new($c, $s);
        LOOP: while (my @ready = $sel->can_read(10)) {
            for my $h (@ready) {
                my $n = sysread $h, my $buf, 65536;
                last LOOP if !$n || ($h == $s && $drop);
                syswrite $h == $c ? $s : $c, $buf;
            }
        }
        close $c;
        close $s;
        $drop = 0;
    }
    POSIX::_exit(0);
}
close $ls;
($rc, $out, $err) = ctl_run($t, $proxy, ['set-weight', 'lost', '5', '--force']);
is $rc, 1, 'a change whose reply is lost: exit 1';
is r('HGET', 'canary:lost', 'generation'), 1, 'the change was written';
unlike $err, qr/cannot reach/, 'it does not say Redis was not reached';
like $err, qr/^canary-ctl:\ no\ reply\ from\ Redis\ at\ \Q$proxy\E
               \ to\ the\ change\ of\ lost:\ it\ may\ have\ been\ written/x,
    'it says the change may be written' or diag $err;
like $err, qr/canary-ctl receipts lost 1/, 'and how to see';
kill 'TERM', $ppid;
waitpid $ppid, 0;

# ---- a password Redis refuses, none where it wants one (last: r() has
# no password) ---------------------------------------------------------

my $pw = $t->prefix . '/tmp/pw';
open my $fh, '>', $pw or die;
print $fh "wrong-s3cret\n";
close $fh;
r('CONFIG', 'SET', 'requirepass', 'pw-s3cret');
for my $args (['status', 'h'], ['receipts', 'h'], ['receipts', 'h', '--json'],
              ['pins', 'h'], ['fleet', 'h'], ['set-weight', 'h', '5'],
              ['evidence', 'h', '0a1b2c3d-0000-4000-8000-000000000001'])
{
    ($rc, $out, $err) = ctl_run($t, $redis, ['--password-file', $pw, @$args]);
    is $rc, 1, "canary-ctl @$args, a wrong password: exit 1";
    my $said = "canary-ctl: Redis at $redis refused the password of $pw";
    like $err, qr/^\Q$said\E$/m,
        'says the password was refused'
        or diag $err;
    unlike $err, qr/s3cret/, 'and does not print it';
    ($rc, $out, $err) = ctl(@$args);
    is $rc, 1, "canary-ctl @$args, no password: exit 1";
    like $err, qr/^canary-ctl: Redis at \Q$redis\E needs a password: --pas/m,
        'says it needs one' or diag $err;
}

done_testing();
