#!/usr/bin/perl

# Story: whatever a client puts in the tenant header, the override headers
# and the Cookie header, nginx keeps answering and the decision stays sane.
# A 4 KB key and raw binary bytes hash like any key (the bucket is the
# formula over the exact bytes); repeated and numerous override headers,
# and malformed cookies ("canary", "=;;=", "canary=", very long ones) are
# handled by the rules, never by a crash: the workers are the same at the
# end, and the log has no "[alert] ... exited on signal".

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use CanaryTest;

my $t = CanaryTest->new;
my $port = $t->port('http');

my $rules = <<'EOF';
        override X-Canary-Opt-In   true  canary;
        override X-Summit-Employee true  canary from=127.0.0.2;
        override X-Canary          never stable;
        cookie   canary;
EOF

$t->write_conf(<<"EOF", workers => 2);
    canary_zone canary 4m;

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

    canary_split w50 {
        stable stable_up;
        canary canary_up;
        weight 50;
$rules
    }

${\ $t->origins }
    server {
        listen 127.0.0.1:$port;

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

        location /w50 {
            canary w50;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }
    }
EOF

$t->start;

my @workers = sort $t->worker_pids;

sub raw {
    my ($path, @headers) = @_;

    my $req = "GET $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n";

    while (@headers) {
        my ($k, $v) = splice @headers, 0, 2;
        $req .= "$k: $v\r\n";
    }

    return CanaryTest::decision($t->raw_request($port, "$req\r\n"));
}

sub show {
    my ($d) = @_;
    return join ' ', map { "$_=" . ($d->{$_} // '-') }
                     qw(status side variant reason bucket weight);
}

# a sane answer: proxied where $canary_variant says, with a known reason
sub sane {
    my ($d) = @_;

    return $d->{status} == 200
           && defined $d->{side} && $d->{side} eq $d->{variant}
           && $d->{side} =~ /^(?:stable|canary)$/
           && $d->{reason} =~ /^(?:hash|random|header|cookie)$/
           && (!defined $d->{bucket}
               || ($d->{bucket} =~ /^\d+$/ && $d->{bucket} < 10000));
}

sub alive {
    my ($what) = @_;

    my $d = raw('/w100', 'X-Tenant-Id' => 'still-alive');
    ok($d->{status} == 200 && $d->{side} eq 'canary',
       "nginx still answers after $what");
}

# expect a hashed decision equal to the formula over the exact key bytes
sub hashed {
    my ($name, $key, $path) = @_;

    $path ||= '/w50';

    my $d = raw($path, 'X-Tenant-Id' => $key);
    my $b = CanaryTest::bucket('', $key);
    my $want = $path eq '/w0' ? 'stable'
             : $path eq '/w100' ? 'canary'
             : $b < 5000 ? 'canary' : 'stable';

    ok(sane($d) && $d->{reason} eq 'hash' && $d->{bucket} eq $b
       && $d->{side} eq $want,
       "$name: hashed like any key (bucket $b, $want)")
        or diag("got " . show($d));
}


# ---- huge and binary keys --------------------------------------------------

hashed('a 4 KB key', 'k' x 4096);
hashed('a 4 KB key of mixed bytes',
       join '', map { chr(33 + ($_ * 31) % 94) } 1 .. 4096);
hashed('a 7 KB key', 'x' x 7000);

my $high = join '', map { chr } 0x80 .. 0xff;
hashed('a key of all 128 high bytes', $high);
hashed('a key of high bytes on w0', $high, '/w0');
hashed('a key of high bytes on w100', $high, '/w100');
hashed('a key of control bytes',
       join '', map { chr } 1 .. 8, 11, 12, 14 .. 31, 127);
hashed('invalid UTF-8', "\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x28\x8c\xbc");

for my $seed (1 .. 20) {
    srand($seed);
    my $key = join '', map { chr(128 + int rand 128) } 1 .. 1 + int rand 64;
    hashed("random high bytes, seed $seed", $key);
}

{
    my $d = raw('/w50', 'X-Tenant-Id' => 'x' x 20000);
    ok($d->{status} == 400 || $d->{status} == 494,
       "a 20 KB key is refused by nginx itself ($d->{status})");
}
alive('a key larger than the header buffers');

{
    my $d = raw('/w50', 'X-Tenant-Id' => "nul\0byte");
    is($d->{status}, 400, 'a NUL in the key is refused by nginx itself');
}
alive('a NUL byte in a header');

{
    my $d = raw('/w50', 'X-Tenant-Id' => 'first', 'X-Tenant-Id' => 'second');
    my %ok = map { CanaryTest::bucket('', $_) => 1 }
             'first', 'first, second', 'first,second';

    ok(sane($d) && $d->{reason} eq 'hash' && $ok{$d->{bucket}},
       'a repeated tenant header hashes the first (or the joined) value')
        or diag("got " . show($d));
}


# ---- repeated and numerous override headers --------------------------------

{
    my $d = raw('/w0', 'X-Tenant-Id' => 't1',
                'X-Canary-Opt-In' => 'false', 'X-Canary-Opt-In' => 'true');
    ok(sane($d) && $d->{side} eq 'canary' && $d->{reason} eq 'header',
       'opt-in sent twice, the second one matching: canary by header')
        or diag("got " . show($d));

    $d = raw('/w100', 'X-Tenant-Id' => 't1',
             map { ('X-Canary' => 'never') } 1 .. 200);
    ok(sane($d) && $d->{side} eq 'stable' && $d->{reason} eq 'header',
       '200 copies of X-Canary: never: stable by header')
        or diag("got " . show($d));

    $d = raw('/w100', 'X-Tenant-Id' => 't1',
             (map { ('X-Canary-Opt-In' => "nope$_") } 1 .. 100),
             (map { ('X-Canary' => "never$_") } 1 .. 100));
    ok(sane($d) && $d->{side} eq 'canary' && $d->{reason} eq 'hash',
       '200 near-miss override headers: ignored, hashed')
        or diag("got " . show($d));

    $d = raw('/w0', 'X-Tenant-Id' => 't1',
             (map { ("X-Junk-$_" => 'true') } 1 .. 500),
             'X-Canary-Opt-In' => 'true');
    ok(sane($d) && $d->{side} eq 'canary' && $d->{reason} eq 'header',
       'an override after 500 other headers still counts')
        or diag("got " . show($d));

    $d = raw('/w0', 'X-Tenant-Id' => 't1',
             'X-Canary-Opt-In' => 'true' x 1500);
    ok(sane($d) && $d->{side} eq 'stable' && $d->{reason} eq 'hash',
       'a 6 KB override value is not "true"')
        or diag("got " . show($d));

    $d = raw('/w0', 'X-Tenant-Id' => 't1',
             'X-Canary-Opt-In' => "tr\x80ue");
    ok(sane($d) && $d->{side} eq 'stable' && $d->{reason} eq 'hash',
       'an override value with a high byte is not "true"')
        or diag("got " . show($d));

    $d = raw('/w0', 'X-Tenant-Id' => 't1',
             ('X-Summit-Employee' => 'true') x 50);
    ok(sane($d) && $d->{side} eq 'stable' && $d->{reason} eq 'hash',
       '50 employee headers from an untrusted address: still ignored')
        or diag("got " . show($d));
}
alive('repeated override headers');


# ---- malformed cookies -----------------------------------------------------

my @cookies = (
    # value                                    path     side      reason
    ['canary',                                 '/w0',   'stable', 'hash'],
    ['=;;=',                                   '/w0',   'stable', 'hash'],
    ['canary=',                                '/w100', 'canary', 'hash'],
    [';;;;;;',                                 '/w0',   'stable', 'hash'],
    ['=',                                      '/w100', 'canary', 'hash'],
    ['==always',                               '/w0',   'stable', 'hash'],
    ['canary==always',                         '/w0',   'stable', 'hash'],
    ['canary="',                               '/w0',   'stable', 'hash'],
    ['canary=""',                              '/w100', 'canary', 'hash'],
    ['canary="always',                         '/w0',   'stable', 'hash'],
    ['canary=always"',                         '/w0',   'stable', 'hash'],
    ['canary =always',                         '/w0',   'stable', 'hash'],
    ['canary',                                 '/w100', 'canary', 'hash'],
    [' ; ;canary=always',                      '/w0',   'canary', 'cookie'],
    ['canary=always;',                         '/w0',   'canary', 'cookie'],
    ["canary=always \t; theme=dark",           '/w0',   'canary', 'cookie'],
    ["canary=\x80\xff",                        '/w0',   'stable', 'hash'],
    ["canary=alw\0ays",                        '/w0',   undef,    undef],
    ['canary=' . ('a' x 7000),                 '/w0',   'stable', 'hash'],
    [('j' x 7000) . '; canary=always',         '/w0',   'canary', 'cookie'],
    [join('; ', map { "c$_=v$_" } 1 .. 700) . '; canary=never',
                                               '/w100', 'stable', 'cookie'],
    [join('', map { ';=' } 1 .. 3000),         '/w0',   'stable', 'hash'],
    [join('', map { 'canary;' } 1 .. 1000),    '/w100', 'canary', 'hash'],
    [join('', map { 'canary=; ' } 1 .. 700),   '/w100', 'canary', 'hash'],
);

for my $c (@cookies) {
    my ($cookie, $path, $side, $reason) = @$c;
    my $name = length $cookie > 40
               ? 'Cookie of ' . length($cookie) . ' bytes'
               : "Cookie '" . join('', map { /[\x20-\x7e]/ ? $_
                                             : sprintf '\\x%02x', ord }
                                       split //, $cookie) . "'";

    my $d = raw($path, 'X-Tenant-Id' => 'cookie-tenant', Cookie => $cookie);

    if (!defined $side) {
        is($d->{status}, 400, "$name: refused by nginx itself");
        next;
    }

    ok(sane($d) && $d->{side} eq $side && $d->{reason} eq $reason,
       "$name on $path: $side by $reason")
        or diag("got " . show($d));
}

{
    my $d = raw('/w0', 'X-Tenant-Id' => 't1', 'Cookie' => 'a=1',
                map { ('Cookie' => "x$_=canary") } 1 .. 300);
    ok(sane($d) && $d->{side} eq 'stable' && $d->{reason} eq 'hash',
       '300 Cookie headers without the cookie: hashed')
        or diag("got " . show($d));
}
alive('malformed cookies');


# ---- the same, many times, in parallel -------------------------------------

{
    my @reqs;

    for my $i (1 .. 600) {
        push @reqs, { path => '/w50', headers => [
            'X-Tenant-Id' => join('', map { chr(1 + ($i * $_) % 255) } 1 .. 40)
                             =~ s/[\r\n\0]/x/gr =~ s/^\s+|\s+$//gr,
            'Cookie' => ('canary=' . ('=' x ($i % 7)) . ';' x ($i % 5)),
            'X-Canary' => ($i % 3 ? 'never ' : "nev\xffer"),
        ] };
    }

    my $res = $t->route_many($port, \@reqs, clients => 4);
    my @bad = grep { !sane($res->[$_]) } 0 .. $#$res;

    is(scalar @bad, 0, '600 hostile requests from 4 clients: all sane')
        or diag(join "\n", map { show($res->[$_]) }
                           @bad[0 .. ($#bad < 9 ? $#bad : 9)]);
}
alive('hostile requests in parallel');

is_deeply([sort $t->worker_pids], \@workers,
          'the same workers served everything: none crashed or was replaced');

$t->stop;

unlike($t->error_log, qr/exited on signal/, 'no worker exited on a signal');

done_testing;
