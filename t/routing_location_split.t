#!/usr/bin/perl

# Story: the split that applies to a request is the one of the location
# that serves it.  "canary w100;" in a location routes with w100 and
# "canary off;" in a location routes with nothing, even when the server
# level inherits another split and a $canary_* variable was already read
# before the location was chosen (here by "set" at server level, a common
# way to tag a request early for logging).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use CanaryTest;

my $t = CanaryTest->new;
my $port = $t->port('http');
my $plain = $t->port('plain');

my $locations = <<"EOF";
        location /w100 {
            canary w100;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        location /w0 {
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        location /off {
            canary off;
${\ CanaryTest::expose_vars() }
            return 200 "none\\n";
        }
EOF

$t->write_conf(<<"EOF");
    canary_zone canary 4m;

    canary_split w0 {
        stable stable_up;
        canary canary_up;
        weight 0;
    }

    canary_split w100 {
        stable stable_up;
        canary canary_up;
        weight 100;
    }

${\ $t->origins }
    # the server level reads \$canary_variant before a location is chosen
    server {
        listen 127.0.0.1:$port;
        canary w0;
        set \$early_variant \$canary_variant;

$locations
    }

    # the same without the early read: the reference
    server {
        listen 127.0.0.1:$plain;
        canary w0;

$locations
    }
EOF

$t->start;

for my $case ([$plain, 'without an early read'],
              [$port, 'after a server-level read of $canary_variant'])
{
    my ($p, $when) = @$case;

    my $d = $t->route($p, '/w100', { 'X-Tenant-Id' => 'tenant-a' });

    ok($d->{side} eq 'canary' && $d->{variant} eq 'canary'
       && $d->{weight} eq '100',
       "$when: a location with \"canary w100\" routes by w100 "
       . "(side $d->{side}, \$canary_weight $d->{weight})");

    $d = $t->route($p, '/w0', { 'X-Tenant-Id' => 'tenant-a' });

    ok($d->{side} eq 'stable' && $d->{weight} eq '0',
       "$when: a location inheriting w0 routes by w0");

    my $res = $t->get($p, '/off', { 'X-Tenant-Id' => 'tenant-a' });
    my @vars = sort grep { /^x-canary-/ } keys %{$res->{headers}};

    is("@vars", '', "$when: a location with \"canary off\" has no "
                    . "\$canary_* values");
}

$t->stop;

done_testing;
