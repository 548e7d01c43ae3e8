#!/usr/bin/perl

# Story: ingress-nginx users steer canary traffic with
# canary-by-header-pattern; here the same is an override whose value is a
# regex, nginx's convention ("~" with case, "~*" without):
#
#     override X-Summit-Employee ~*@example\.com$ canary from=10.0.0.0/8;
#
# The issue's example, as written, behind a balancer at 127.0.0.2 that
# realip trusts: an employee at 10.1.2.3 goes to canary, the same header
# from 192.168.1.5 (or forged straight from 127.0.0.1) does not; the
# same with realip in the location and the decision read before realip
# ran (decided again with the client's address).  The upstream form
# (canary_balancer) decides alike.  Around
# it: match / no match, with and without case, from=, a header given on
# several lines (matched line by line, as the exact form is, never
# joined), precedence (exact overrides first, then the patterns in
# configuration order, then the cookie and the cohort; a pattern says
# $canary_reason "header" like the exact form), the "\~" escape for an
# exact value starting with "~", and hostile values: a regex that
# backtracks catastrophically stops at the module's match limit (100,000
# steps, logged, taken as no match: the request is decided by the hash)
# where PCRE2's default (10,000,000) would hold the worker ~54 ms for a
# 21-byte value (~100 ms from 30 bytes on); a stop ends the request's
# patterns, and they look at 8 header lines of a request at most.  A
# reload compiles the new regexes; one with a bad regex is refused and
# the running configuration keeps matching.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use CanaryTest;

my $t = CanaryTest->new;
my %port = map { $_ => $t->port($_) } qw(http lb loc);

my $rules = <<'EOF';
        override X-Canary         never stable;
        override X-Exact-First    ~^on$ canary;
        override X-Exact-First    on    stable;
        override X-Summit-Employee ~*@example\.com$ canary from=10.0.0.0/8 from=127.0.0.2;
        override X-User           ~^beta-[0-9]+$  canary;
        override X-Group          ~*^(qa|staff)$  canary;
        override X-Team           ~^ops           stable;
        override X-Order          ~^yes$          stable;
        override X-Order          ~^y             canary;
        override X-Tilde          \~literal       canary;
        override X-Tilde-Re       ~^~x            canary;
        override X-Backslash      \secret         canary;
        override X-Slow           ~^(a+)+$        canary;
        override X-Slow-Trusted   ~^(a+)+$        canary from=127.0.0.2;
        override X-Anything       ~^              canary;
        override X-Digits         ~\d*\d*x$        canary;
        cookie   canary;
        cohort   $http_x_cohort;
        cohort_weight internal 100;
        cohort_weight holdout  0;
EOF

$t->write_conf(<<"EOF", workers => 1, http_pre => 'large_client_header_buffers 4 64k;');
    canary_zone canary 1m;

    canary_split w0 {
        stable stable_up;
        canary canary_up;
        weight 0;
$rules
    }

    canary_split w100 {
        stable stable_up;
        canary canary_up;
        weight 100;
$rules
    }

    # the issue's line alone, behind the balancer
    canary_split issue {
        stable stable_up;
        canary canary_up;
        weight 0;
        override X-Summit-Employee ~*\@example\\.com\$ canary from=10.0.0.0/8;
    }

    # the upstream form decides with the same code
    upstream api_w0 {
        canary_balancer w0;
    }

${\ $t->origins }
    server {
        listen 127.0.0.1:$port{http};

        location /up {
${\ CanaryTest::expose_vars() }
            proxy_pass http://api_w0;
        }

        location /w0 {
            canary w0;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        location /w100 {
            canary w100;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }
    }

    server {
        listen 127.0.0.1:$port{lb};

        set_real_ip_from 127.0.0.2;
        real_ip_header   X-Forwarded-For;

        location / {
            canary issue;
${\ CanaryTest::expose_vars() }
            add_header X-Remote-Addr \$remote_addr always;
            proxy_pass http://\$canary_upstream;
        }
    }

    # realip in the location (preaccess), and the decision asked for in
    # the rewrite phase before it ran ("set"): decided again with the
    # client's address
    server {
        listen 127.0.0.1:$port{loc};

        location / {
            set_real_ip_from 127.0.0.2;
            real_ip_header   X-Forwarded-For;
            canary issue;
            set \$early \$canary_variant;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }
    }
EOF

like($t->{conf}, qr/override X-Summit-Employee ~\*\@example\\\.com\$ canary from=10\.0\.0\.0\/8;/,
     'the issue\'s line is in nginx.conf as the issue writes it');

$t->start;

my $TENANT = 'tenant-pattern';
my @T = ('X-Tenant-Id' => $TENANT);

sub one {
    my ($port, $path, $headers, $from) = @_;

    my $req = { path => $path, headers => $headers };
    $req->{local_address} = $from if $from;

    return $t->route_many($port, [$req], clients => 1)->[0];
}

sub show {
    my ($d) = @_;
    return join ' ', map { "$_=" . ($d->{$_} // '-') }
                     qw(status side variant reason weight);
}

sub check {
    my ($name, $path, $headers, $side, $reason, %o) = @_;

    my $d = one($o{port} || $port{http}, $path, $headers, $o{from});

    ok($d->{status} == 200 && $d->{side} eq $side
       && $d->{variant} eq $side && $d->{reason} eq $reason,
       "$name: $side by $reason") or diag('got ' . show($d));

    return $d;
}


# ---- match and no match, with case ------------------------------------------

check('no pattern header, weight 0', '/w0', [@T], 'stable', 'hash');
check('no pattern header, weight 100', '/w100', [@T], 'canary', 'hash');

for my $v ('beta-1', 'beta-42', 'beta-0007') {
    check("X-User '$v' matches ~^beta-[0-9]+\$", '/w0',
          [@T, 'X-User' => $v], 'canary', 'header');
}

# (nginx drops the spaces around a value before any module sees it)
for my $v ('BETA-1', 'Beta-1', 'beta-', 'beta-1x', 'xbeta-1', 'beta-1 x',
           'beta-1, beta-2', '')
{
    check("X-User '$v' does not match ~^beta-[0-9]+\$ (case-sensitive, "
          . "anchored)", '/w0', [@T, 'X-User' => $v], 'stable', 'hash');
}

check('header name in any case', '/w0', [@T, 'x-uSeR' => 'beta-3'],
      'canary', 'header');

for my $v ('qa', 'QA', 'Qa', 'staff', 'STAFF', 'sTaFf') {
    check("X-Group '$v' matches ~*^(qa|staff)\$ (without case)", '/w0',
          [@T, 'X-Group' => $v], 'canary', 'header');
}

for my $v ('qa2', 'staffer', 'q a', 'dev') {
    check("X-Group '$v' does not match ~*^(qa|staff)\$", '/w0',
          [@T, 'X-Group' => $v], 'stable', 'hash');
}

check('a pattern to stable (X-Team ~^ops), unanchored at the end',
      '/w100', [@T, 'X-Team' => 'ops-berlin'], 'stable', 'header');
check('X-Team OPS: ~ is case-sensitive', '/w100',
      [@T, 'X-Team' => 'OPS'], 'canary', 'hash');
check('~^ matches any value, the empty one too', '/w0',
      [@T, 'X-Anything' => ''], 'canary', 'header');


check('upstream form (canary_balancer): a pattern match', '/up',
      [@T, 'X-User' => 'beta-5'], 'canary', 'header');
check('upstream form: no match', '/up', [@T, 'X-User' => 'gamma-5'],
      'stable', 'hash');
check('upstream form: a trusted from= pattern', '/up',
      [@T, 'X-Summit-Employee' => 'ann@example.com'], 'canary', 'header',
      from => '127.0.0.2');
check('upstream form: the same untrusted', '/up',
      [@T, 'X-Summit-Employee' => 'ann@example.com'], 'stable', 'hash');


# ---- from= -------------------------------------------------------------------

check('employee from an untrusted address (127.0.0.1)', '/w0',
      [@T, 'X-Summit-Employee' => 'ann@example.com'], 'stable', 'hash');
check('employee from a trusted address (127.0.0.2)', '/w0',
      [@T, 'X-Summit-Employee' => 'ann@example.com'], 'canary', 'header',
      from => '127.0.0.2');
check('employee, upper case, trusted (~*)', '/w0',
      [@T, 'X-Summit-Employee' => 'ANN@EXAMPLE.COM'], 'canary', 'header',
      from => '127.0.0.2');
check('employee of another domain, trusted', '/w0',
      [@T, 'X-Summit-Employee' => 'ann@example.org'], 'stable', 'hash',
      from => '127.0.0.2');
check('"example.com" needs the escaped dot: ann@exampleXcom', '/w0',
      [@T, 'X-Summit-Employee' => 'ann@exampleXcom'], 'stable', 'hash',
      from => '127.0.0.2');

# the issue's line as written, through realip
check('issue example: employee at 10.1.2.3 through the balancer', '/',
      [@T, 'X-Forwarded-For' => '10.1.2.3',
       'X-Summit-Employee' => 'bob@Example.COM'], 'canary', 'header',
      port => $port{lb}, from => '127.0.0.2');
check('issue example: the same header from 192.168.1.5', '/',
      [@T, 'X-Forwarded-For' => '192.168.1.5',
       'X-Summit-Employee' => 'bob@example.com'], 'stable', 'hash',
      port => $port{lb}, from => '127.0.0.2');
check('issue example: a forged 10.x from a peer realip does not trust', '/',
      [@T, 'X-Forwarded-For' => '10.1.2.3',
       'X-Summit-Employee' => 'bob@example.com'], 'stable', 'hash',
      port => $port{lb});
check('issue example: employee at 10.1.2.3, another domain', '/',
      [@T, 'X-Forwarded-For' => '10.1.2.3',
       'X-Summit-Employee' => 'bob@example.com.evil.net'], 'stable', 'hash',
      port => $port{lb}, from => '127.0.0.2');


check('issue example, realip in the location, decision read before it: '
      . 'employee at 10.1.2.3', '/',
      [@T, 'X-Forwarded-For' => '10.1.2.3',
       'X-Summit-Employee' => 'bob@example.com'], 'canary', 'header',
      port => $port{loc}, from => '127.0.0.2');
check('the same from 192.168.1.5', '/',
      [@T, 'X-Forwarded-For' => '192.168.1.5',
       'X-Summit-Employee' => 'bob@example.com'], 'stable', 'hash',
      port => $port{loc}, from => '127.0.0.2');


# ---- a header on several lines -------------------------------------------------

check('X-User twice, the second line matches', '/w0',
      [@T, 'X-User' => 'nobody', 'X-User' => 'beta-7'], 'canary', 'header');
check('X-User twice, the first line matches', '/w0',
      [@T, 'X-User' => 'beta-7', 'X-User' => 'nobody'], 'canary', 'header');
check('X-Group "qa" and "staff" on two lines: each line matches '
      . '^(qa|staff)$ (joined, "qa, staff" would not)', '/w0',
      [@T, 'X-Group' => 'qa', 'X-Group' => 'staff'], 'canary', 'header');
check('X-User "beta-" and "7" on two lines: not joined into a match',
      '/w0', [@T, 'X-User' => 'beta-', 'X-User' => '7'], 'stable', 'hash');


# ---- precedence ------------------------------------------------------------------

check('exact override beats a pattern written before it', '/w0',
      [@T, 'X-Exact-First' => 'on'], 'stable', 'header');
check('exact "never" beats a matching pattern to canary', '/w0',
      [@T, 'X-User' => 'beta-1', 'X-Canary' => 'never'], 'stable', 'header');
check('exact "never" beats a matching pattern, pattern header last',
      '/w0', [@T, 'X-Canary' => 'never', 'X-User' => 'beta-1'],
      'stable', 'header');
check('patterns in configuration order: ~^yes$ stable before ~^y canary',
      '/w0', [@T, 'X-Order' => 'yes'], 'stable', 'header');
check('patterns in configuration order: "yep" only matches ~^y', '/w100',
      [@T, 'X-Order' => 'yep'], 'canary', 'header');
check('configuration order, not header order: X-Team (stable) sent before '
      . 'X-User (canary, configured first)', '/w100',
      [@T, 'X-Team' => 'ops', 'X-User' => 'beta-1'], 'canary', 'header');
check('pattern beats cookie never', '/w0',
      [@T, 'Cookie' => 'canary=never', 'X-User' => 'beta-1'],
      'canary', 'header');
check('pattern beats cookie always', '/w0',
      [@T, 'Cookie' => 'canary=always', 'X-Team' => 'ops'],
      'stable', 'header');
check('the cookie applies when no pattern matches', '/w0',
      [@T, 'Cookie' => 'canary=always', 'X-Team' => 'dev'],
      'canary', 'cookie');
check('pattern beats cohort internal (100)', '/w0',
      [@T, 'X-Cohort' => 'internal', 'X-Team' => 'ops'], 'stable', 'header');
check('untrusted pattern is skipped, the cookie applies', '/w0',
      [@T, 'X-Summit-Employee' => 'a@example.com',
       'Cookie' => 'canary=always'], 'canary', 'cookie');


# ---- a value starting with "~" -------------------------------------------------

check('"\\~literal" is the exact value "~literal"', '/w0',
      [@T, 'X-Tilde' => '~literal'], 'canary', 'header');
check('"\\~literal": "literal" does not match', '/w0',
      [@T, 'X-Tilde' => 'literal'], 'stable', 'hash');
check('"\\~literal": "~literalx" does not match (exact)', '/w0',
      [@T, 'X-Tilde' => '~literalx'], 'stable', 'hash');
check('"~^~x": a regex for values starting with "~x"', '/w0',
      [@T, 'X-Tilde-Re' => '~xyz'], 'canary', 'header');
check('"~^~x": "xyz" does not match', '/w0',
      [@T, 'X-Tilde-Re' => 'xyz'], 'stable', 'hash');

# an exact value that starts with "\" but not "\~" means what it meant
# before pattern overrides: only "\~" needs the escape
check('"\\secret" is still the exact value "\\secret"', '/w0',
      [@T, 'X-Backslash' => '\\secret'], 'canary', 'header');
check('"\\secret": "secret" does not match', '/w0',
      [@T, 'X-Backslash' => 'secret'], 'stable', 'hash');


# ---- hostile values ------------------------------------------------------------

{
    my $mark = $t->log_mark;

    # from= is checked first: an untrusted client never runs the regex
    check('X-Slow-Trusted "a" x 20 . "!" from an untrusted address',
          '/w0', [@T, 'X-Slow-Trusted' => ('a' x 20) . '!'],
          'stable', 'hash');
    check('X-Slow-Trusted "aaaa" from an untrusted address: ignored',
          '/w0', [@T, 'X-Slow-Trusted' => 'aaaa'], 'stable', 'hash');
    check('X-Slow-Trusted "aaaa" from a trusted address', '/w0',
          [@T, 'X-Slow-Trusted' => 'aaaa'], 'canary', 'header',
          from => '127.0.0.2');

    check('X-Slow "aaaa" matches ~^(a+)+$', '/w0',
          [@T, 'X-Slow' => 'aaaa'], 'canary', 'header');
    check('X-Slow "a" x 10 . "!" : a small backtrack, no match, no log',
          '/w0', [@T, 'X-Slow' => ('a' x 10) . '!'], 'stable', 'hash');

    unlike($t->log_since($mark), qr/stopped on a value/,
           'no limit reached below 100,000 steps, nor by the untrusted '
           . 'client\'s value (its regex never ran)');

    # ~1,000,000 steps: under PCRE2's default limit, over the module's
    my $d = check('X-Slow "a" x 20 . "!": stopped at the match limit, '
                  . 'decided by the hash', '/w0',
                  [@T, 'X-Slow' => ('a' x 20) . '!'], 'stable', 'hash');

    ok($t->wait_for_log(qr/\[warn\].*canary: "override" regex "~\^\(a\+\)\+\$" for header "x-slow" stopped on a value of 21 bytes: pcre2_match\(\) error -47, taken as no match/,
                        5, $mark),
       'the module\'s match limit stopped it, and said so in the log');

    # astronomically long without a limit; one line a second at most
    my @reqs = map { { path => '/w0', headers =>
                       [@T, 'X-Slow' => ('a' x 4000) . '!'] } } 1 .. 20;
    my $res = $t->route_many($port{http}, \@reqs, clients => 2);
    my @bad = grep { $_->{status} != 200 || $_->{reason} ne 'hash' } @$res;

    is(scalar @bad, 0, '20 requests with a 4,001-byte catastrophic value: '
                       . 'all answered, by the hash');

    my $lines = () = $t->log_since($mark) =~ /stopped on a value/g;
    ok($lines >= 1 && $lines < 21,
       "the limit is logged at most once a second ($lines lines for 21 "
       . "stops)");

    # a stop ends the request's patterns: a later line is not looked at
    check('X-Slow stopped, then X-User beta-1: no pattern applies',
          '/w0', [@T, 'X-Slow' => ('a' x 20) . '!', 'X-User' => 'beta-1'],
          'stable', 'hash');
    check('X-User beta-1 first (its pattern before X-Slow\'s): it applies, '
          . 'X-Slow\'s regex is not run', '/w0',
          [@T, 'X-User' => 'beta-1', 'X-Slow' => ('a' x 20) . '!'],
          'canary', 'header');

    # a big honest value still matches: the limit bounds backtracking,
    # not the length
    my $big = ('x' x 60000) . '@example.com';
    check('a 60,012-byte employee value matches (trusted)', '/w0',
          [@T, 'X-Summit-Employee' => $big], 'canary', 'header',
          from => '127.0.0.2');
    check('a 60,012-byte value of ~^beta-[0-9]+$ shape matches', '/w0',
          [@T, 'X-User' => 'beta-' . ('7' x 60000)], 'canary', 'header');
    check('a 60,000-byte value that does not match', '/w0',
          [@T, 'X-User' => 'beta-' . ('7' x 59994) . 'x'], 'stable', 'hash');
    check('binary bytes in the value: no match, no error', '/w0',
          [@T, 'X-User' => "beta-\x80\xff\x01"], 'stable', 'hash');
}


# ---- lines a request may make the patterns look at -------------------------------

{
    my $mark = $t->log_mark;

    check('8 lines of X-User, the 8th matches', '/w0',
          [@T, (map { ('X-User' => "nobody-$_") } 1 .. 7),
           'X-User' => 'beta-8'], 'canary', 'header');
    check('9 lines of X-User, the 9th matches: past the 8 lines looked at',
          '/w0', [@T, (map { ('X-User' => "nobody-$_") } 1 .. 8),
           'X-User' => 'beta-9'], 'stable', 'hash');
    check('lines of headers no pattern names do not count', '/w0',
          [@T, (map { ('X-Other' => "o-$_") } 1 .. 20),
           'X-User' => 'beta-1'], 'canary', 'header');
    check('lines of an untrusted from= pattern do not count', '/w0',
          [@T, (map { ('X-Slow-Trusted' => "a") } 1 .. 20),
           'X-User' => 'beta-1'], 'canary', 'header');

    ok($t->wait_for_log(qr/\[warn\].*canary: more than 8 lines of "override" regex headers, "x-user" and the rest taken as no match/,
                        5, $mark),
       'the 9th line is logged');
}


# ---- a regex unanchored at the start: PCRE2's match limit is per start ---------
#
# PCRE2's interpreter counts its match limit afresh at each start position
# of an unanchored regex, and counts no steps for backtracking inside a
# single-character repeat: "\d*\d*x$" against "1" x N . "x!" costs ~N^3
# steps and is never stopped (measured against libpcre2-8 10.42 with the
# module's limits: 95 ms for N = 1,000, 42.7 s for N = 8,000, rc -1: no
# match, no stop).  The module bounds a match by PCRE2's automatic
# callouts too (10,000 a match); without that this check fails (the
# value is not stopped, nothing is logged).

{
    select(undef, undef, undef, 1.1);    # past the once-a-second log limit

    my $mark = $t->log_mark;

    check('X-Digits "1" x 2000 . "x!": decided by the hash', '/w0',
          [@T, 'X-Digits' => ('1' x 2000) . 'x!'], 'stable', 'hash');

    ok($t->wait_for_log(qr/canary: "override" regex "~\\d\*\\d\*x\$" for header "x-digits" stopped on a value of 2002 bytes/,
                        3, $mark),
       'an unanchored regex that backtracks cubically is stopped by the '
       . 'module\'s limit, and logged');
}


# ---- the callouts are one budget for all of a request's lines ---------------
#
# "\d*\d*x$" against "1" x 65 . "x!" takes 6,699 callouts (libpcre2-8
# 10.42): one such line is under the 10,000 and is not stopped; two lines
# of it are 13,398, so the second is stopped.  With a budget per match
# eight such lines would cost eight times one.

{
    my $v = ('1' x 65) . 'x!';

    select(undef, undef, undef, 1.1);    # past the once-a-second log limit
    my $mark = $t->log_mark;

    check('one X-Digits line of 67 bytes: decided by the hash', '/w0',
          [@T, 'X-Digits' => $v], 'stable', 'hash');

    # past the log limit again, so that a stop of that request would show
    select(undef, undef, undef, 1.1);

    check('two X-Digits lines of 67 bytes: decided by the hash', '/w0',
          [@T, 'X-Digits' => $v, 'X-Digits' => $v], 'stable', 'hash');

    ok($t->wait_for_log(qr/canary: "override" regex "~\\d\*\\d\*x\$" for header "x-digits" stopped on a value of 67 bytes/,
                        3, $mark),
       'two lines under the limit each are stopped together');

    my @stops = ($t->log_since($mark) // '') =~ /stopped on a value of 67 bytes/g;
    is(scalar @stops, 1, 'once: the one-line request was not stopped');
}


# ---- reload: compiled again with the new configuration ---------------------------

{
    my $conf = $t->{conf};
    (my $changed = $conf) =~ s/~\^beta-\[0-9\]\+\$/~^gamma-[0-9]+\$/g;

    isnt($changed, $conf, 'a configuration with ~^gamma- for X-User');

    $t->write_conf(undef, raw => $changed);
    $t->reload;

    check('after the reload: gamma-1 matches', '/w0',
          [@T, 'X-User' => 'gamma-1'], 'canary', 'header');
    check('after the reload: beta-1 no longer does', '/w0',
          [@T, 'X-User' => 'beta-1'], 'stable', 'hash');

    (my $bad = $changed) =~ s/~\^gamma-/~^(gamma-/;
    $t->allow_log(qr/\[emerg\].*invalid "override" regex/);
    $t->write_conf(undef, raw => $bad);

    # "nginx -s reload" would refuse it itself: the signal, as a service
    # manager sends it
    my $mark = $t->log_mark;
    kill 'HUP', $t->master_pid;
    my $log = $t->wait_for_log(qr/\[emerg\]/, 20, $mark) // '';

    like($log, qr/invalid "override" regex "~\^\(gamma-\[0-9\]\+\$" for header "X-User" in canary_split "w0": pcre2_compile\(\) failed: missing closing parenthesis/,
         'a reload with a bad regex is refused, with PCRE\'s reason');
    check('and the running configuration still matches gamma-1', '/w0',
          [@T, 'X-User' => 'gamma-1'], 'canary', 'header');

    $t->write_conf(undef, raw => $changed);
}

$t->stop;

done_testing;
