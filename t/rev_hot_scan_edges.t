#!/usr/bin/perl

# Story (review of the "hot" pass over the headers): the one pass that
# finds the overrides, the cookie and the key header skips headers by the
# length of their name (len % 64) and finds the key by nginx's header
# hash.  Whatever the lengths, the order and the place of the lines, the
# decision is the one the plain comparison gives: override names of 64
# bytes and more, lengths equal mod 64 (70 and "cookie"), several
# overrides on several lines (the first in configuration order wins), the
# key as the last line of a request with more headers than the first
# part of nginx's header list holds (20), key header names shorter than
# 8 and longer than 64 bytes, spelled with "_", and HTTP/2, whose header hash nginx
# computes elsewhere.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use CanaryTest;

my $t = CanaryTest->new;
my $port = $t->port('http');
my $h2 = $t->port('h2');

# 70 bytes: 70 % 64 == 6, the length of "cookie"
my $long = 'X-Override-' . ('L' x 59);
# a key header name of 70 bytes too, and one of 2
my $lkey = 'x_key_' . ('k' x 64);
(my $lkey_h = $lkey) =~ tr/_/-/;

die unless length($long) == 70 && length($lkey) == 70;

$t->write_conf(<<"EOF", workers => 1);
    canary_zone canary 4m;

    canary_split app {
        stable stable_up;
        canary canary_up;
        weight 50;
        override X-Canary always canary;
        override $long yes canary;
        override Y-Force no stable;
        override Z always canary;
        cookie   canary;
    }

    canary_split longkey {
        stable stable_up;
        canary canary_up;
        weight 50;
        key \$http_$lkey;
        override Cookie2 yes canary;
    }

    canary_split shortkey {
        stable stable_up;
        canary canary_up;
        weight 50;
        key \$http_ab;
    }

${\ $t->origins }
    server {
        listen 127.0.0.1:$port;
        listen 127.0.0.1:$h2 http2;
        underscores_in_headers on;

        location / {
            canary app;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        location /long {
            canary longkey;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        location /short {
            canary shortkey;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }
    }
EOF

$t->start;


sub ask {
    my ($path, @lines) = @_;

    my $req = "GET $path HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
              . join('', map { "$_\r\n" } @lines) . "\r\n";

    return CanaryTest::decision($t->raw_request($port, $req));
}

sub hashed {
    my ($d, $key, $name) = @_;

    is $d->{status}, 200, "$name: answered";
    is $d->{reason}, 'hash', "$name: by the key";
    is $d->{bucket}, CanaryTest::bucket('', $key), "$name: bucket of \"$key\"";
}

sub forced {
    my ($d, $reason, $variant, $name) = @_;

    is $d->{status}, 200, "$name: answered";
    is $d->{reason}, $reason, "$name: by $reason";
    is $d->{variant}, $variant, "$name: $variant";
}

# header lines of many lengths, 6, 70 and 134 (== 6 mod 64) among them
my @fill = map { "X-F$_: v" } 1 .. 12;
push @fill, 'Accept: */*', 'Cookie: a=1', 'Cookiz: canary=always',
    'Y-Forc: no', "$long: no", ('Q' x 134) . ': x', 'X-Canar: always',
    "${long}x: yes", 'Z2: always', 'Cookie: b=2';

cmp_ok scalar @fill, '>', 20, 'more header lines than a list part holds';

for my $key ('acme-1', 'a', 'ab', 'abc', 'abcd', 'abcdefghi') {
    hashed(ask('/', @fill, "X-Tenant-Id: $key"), $key,
           "key \"$key\" last after " . @fill . " lines");
    hashed(ask('/', "X-Tenant-Id: $key", @fill), $key,
           "key \"$key\" first before " . @fill . " lines");
}

# the overrides, on a line of the second list part
forced(ask('/', @fill, "$long: yes"), 'header', 'canary',
       'override of 70 bytes last');
forced(ask('/', @fill, lc("$long") . ": yes", 'X-Tenant-Id: t'),
       'header', 'canary', 'override of 70 bytes, lowercase');
forced(ask('/', @fill, 'Z: always'), 'header', 'canary',
       'override of 1 byte');
forced(ask('/', @fill, 'Y-Force: no'), 'header', 'stable', 'Y-Force');

# several overrides: the first in configuration order, whatever the lines'
forced(ask('/', 'Y-Force: no', @fill, "$long: yes"), 'header', 'canary',
       'Y-Force line first, the 70-byte override wins');
forced(ask('/', "$long: yes", 'Y-Force: no', 'X-Canary: always'),
       'header', 'canary', 'X-Canary wins over both');
forced(ask('/', 'Z: always', 'Y-Force: no'), 'header', 'stable',
       'Y-Force wins over Z');

# the cookie: only if no override matched, on a "Cookie" of any line
forced(ask('/', @fill, 'Cookie: x=1; canary=never'), 'cookie', 'stable',
       'cookie on the last line');
forced(ask('/', 'Cookie: canary=always', "$long: no"), 'cookie', 'canary',
       'cookie beside an override of 70 bytes that does not match');
forced(ask('/', 'Cookie: canary=never', "$long: yes"), 'header', 'canary',
       'an override beats the cookie');

# a key header of 70 bytes, and an override of "cookie"'s length + 1
hashed(ask('/long', @fill, "$lkey_h: t-70"), 't-70', '70-byte key header');
hashed(ask('/long', uc($lkey_h) . ": t-71"), 't-71',
       '70-byte key header, uppercase');
hashed(ask('/long', @fill, "$lkey: t-72"), 't-72',
       '70-byte key header spelled with "_"');
hashed(ask('/', @fill, 'X_Tenant_Id: u-1'), 'u-1',
       'X_Tenant_Id (underscores_in_headers on) after 24 lines');
forced(ask('/long', @fill, 'Cookie2: yes', "$lkey_h: t"), 'header',
       'canary', 'override of 7 bytes beside the long key');

# a key header of 2 bytes
hashed(ask('/short', @fill, 'AB: k2'), 'k2', '2-byte key header');
hashed(ask('/short', 'ab: k3', 'Cookie: canary=always'), 'k3',
       '2-byte key header, no cookie in that split');

# HTTP/2: nginx hashes the header names itself (ngx_hash_key)
SKIP: {
    my $curl = `curl --version 2>/dev/null`;
    skip 'no curl with HTTP/2', 15 unless $curl =~ /HTTP2/;

    my $get = sub {
        my ($path, @h) = @_;
        my @args = ('curl', '-s', '-o', '/dev/null', '-D', '-',
                    '--http2-prior-knowledge',
                    map({ ('-H', $_) } @h), "http://127.0.0.1:$h2$path");
        open my $fh, '-|', @args or die "curl: $!";
        my %d;
        while (<$fh>) {
            s/\r?\n$//;
            $d{status} = $1 if m{^HTTP/2 (\d+)};
            $d{lc $1} = $2 if /^([\w-]+):\s*(.*)$/;
        }
        close $fh;
        return { status => $d{status}, reason => $d{'x-canary-reason'},
                 bucket => $d{'x-canary-bucket'},
                 variant => $d{'x-canary-variant'} };
    };

    hashed($get->('/', 'X-Tenant-Id: h2-1'), 'h2-1', 'HTTP/2 key');
    hashed($get->('/', (map { "X-G$_: v" } 1 .. 25), 'X-Tenant-Id: h2-2'),
           'h2-2', 'HTTP/2 key after 25 lines');
    hashed($get->('/', 'x_tenant_id: h2-4'), 'h2-4',
           'HTTP/2 key spelled with "_"');
    forced($get->('/', "$long: yes", 'X-Tenant-Id: h2-3'), 'header',
           'canary', 'HTTP/2 override of 70 bytes');
    forced($get->('/', 'Cookie: a=1', 'Cookie: canary=never'), 'cookie',
           'stable', 'HTTP/2 cookie on the second cookie field');
}

$t->stop;
done_testing;
