#!/usr/bin/perl

# Story: the tenant key is the header $http_x_tenant_id names, however the
# client spells it, exactly as nginx's variable finds it: any case,
# "X_Tenant_Id" too when underscores_in_headers is on (and dropped, so no
# key, when it is off), several lines as the variable takes them, a longer
# or shorter name never; and a key variable that the configuration read
# before the decision (cached) gives the same bucket.  The module reads the
# key header in its own pass over the headers (nginx's header hash first),
# so every spelling is checked against the bucket formula.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use CanaryTest;

my $t = CanaryTest->new;
my $on = $t->port('http');
my $off = $t->port('http-off');

$t->write_conf(<<"EOF", workers => 1);
    canary_zone canary 4m;

    canary_split app {
        stable stable_up;
        canary canary_up;
        weight 50;
        override X-Canary always canary;
        cookie   canary;
    }

${\ $t->origins }
    server {
        listen 127.0.0.1:$on;
        underscores_in_headers on;

        location / {
            canary app;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        location /cached {
            set \$seen \$http_x_tenant_id;
            canary app;
            add_header X-Seen \$seen always;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }
    }

    server {
        listen 127.0.0.1:$off;

        location / {
            canary app;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }
    }
EOF

$t->start;


# one request with these exact header lines
sub ask {
    my ($port, $path, @lines) = @_;

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


sub unkeyed {
    my ($d, $name) = @_;

    is $d->{status}, 200, "$name: answered";
    is $d->{reason}, 'random', "$name: no key";
}


for my $spelling ('X-Tenant-Id', 'x-tenant-id', 'X-TENANT-ID', 'x-Tenant-iD')
{
    hashed(ask($on, '/', "$spelling: acme-1"), 'acme-1', $spelling);
    hashed(ask($off, '/', "$spelling: acme-1"), 'acme-1',
           "$spelling (underscores off)");
}

for my $spelling ('X_Tenant_Id', 'x-tenant_id', 'X_TENANT-ID') {
    hashed(ask($on, '/', "$spelling: acme-2"), 'acme-2',
           "$spelling with underscores_in_headers on");
    unkeyed(ask($off, '/', "$spelling: acme-2"),
            "$spelling with underscores_in_headers off");
}

for my $other ('X-Tenant-Idx', 'X-Tenant-I', 'X-Tenant.Id', 'Y-Tenant-Id') {
    unkeyed(ask($on, '/', "$other: acme-3"), "$other is not the key");
}

# several lines, whatever their spelling: the value $http_x_tenant_id
# has, the first line's up to nginx 1.23, all of them joined since
my ($major, $minor) = `${\ $t->nginx_bin } -v 2>&1` =~ m{nginx/(\d+)\.(\d+)};
my $joins = defined $minor && ($major > 1 || $minor >= 23);

hashed(ask($on, '/', 'X-Tenant-Id: a', 'X_Tenant_Id: b'),
       $joins ? 'a, b' : 'a', 'two lines, two spellings');
hashed(ask($on, '/', 'x-tenant-id: a', 'Accept: */*', 'X-TENANT-ID: c'),
       $joins ? 'a, c' : 'a', 'two lines apart');

# the key beside the override and the cookie headers, in any order
hashed(ask($on, '/', 'Cookie: other=1', 'X-Tenant-Id: acme-4',
           'X-Canary: no'), 'acme-4', 'beside Cookie and X-Canary');

my $d = ask($on, '/', 'X-Tenant-Id: acme-5', 'X-Canary: always');
is $d->{reason}, 'header', 'the override still wins over the key';
is $d->{variant}, 'canary', 'and sends to canary';

# read by "set" before the decision: the cached value is the key
my $res = $t->raw_request($on, "GET /cached HTTP/1.1\r\nHost: test\r\n"
                               . "Connection: close\r\n"
                               . "X_Tenant_Id: acme-6\r\n\r\n");
is $res->{headers}{'x-seen'}, 'acme-6', 'the variable was read first';
hashed(CanaryTest::decision($res), 'acme-6', 'cached key');

$t->stop;
done_testing;
