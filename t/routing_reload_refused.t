#!/usr/bin/perl

# Story: an operator edits the weight from 0 to 100 and, in the same edit,
# adds a listen on a port that another program holds.  "nginx -s reload"
# is refused ("bind() ... failed") and nginx keeps running the old
# configuration, so the old weight must still apply: a refused reload
# changes nothing, the routing included.  Only a reload that succeeds
# moves the weight.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Socket::INET;
use Test::More;
use CanaryTest;

my $t = CanaryTest->new;
my $port = $t->port('http');
my $busy = $t->port('busy');

sub conf {
    my ($weight, $extra_listen) = @_;

    my $listen = $extra_listen ? "listen 127.0.0.1:$busy;" : '';

    $t->write_conf(<<"EOF", workers => 2);
    canary_zone canary 4m;

    canary_split app {
        stable stable_up;
        canary canary_up;
        weight $weight;
        cohort \$http_x_cohort;
        cohort_weight beta $weight;
    }

${\ $t->origins }
    server {
        listen 127.0.0.1:$port;
        $listen
        canary app;

        location / {
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }
    }
EOF
}

sub sides {
    my ($what, $side, $weight) = @_;

    my @tenants = map { "tenant-$_" } 1 .. 50;
    my $res = $t->route_many($port,
        [ (map { { path => '/', headers => ['X-Tenant-Id' => $_] } }
           @tenants),
          (map { { path => '/', headers => ['X-Tenant-Id' => $_,
                                            'X-Cohort' => 'beta'] } }
           @tenants) ]);

    my @wrong = grep { $_->{side} ne $side || $_->{weight} ne $weight }
                @$res;

    is(scalar @wrong, 0, "$what: all tenants on $side, \$canary_weight "
                         . "$weight (split and cohort weight)")
        or diag(scalar(@wrong) . " of " . @$res . " wrong, e.g. side "
                . "$wrong[0]{side} weight $wrong[0]{weight}");
}

conf(0);
$t->start;

sides('weight 0', 'stable', '0');

# another program holds the port the new configuration wants
my $holder = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                   LocalPort => $busy, Listen => 1)
    or die "cannot hold port $busy: $!";

conf(100, 1);

my $log = $t->reload(refused => 1);

like($log, qr/bind\(\) to 127\.0\.0\.1:$busy failed/,
     'the reload is refused: the port is taken');

$t->allow_log(qr/bind\(\) to 127\.0\.0\.1:$busy failed/,
              qr/still could not bind\(\)/);

sides('after the refused reload to 100', 'stable', '0');

close $holder;

conf(100);
$t->reload;

sides('after a reload to 100 that succeeds', 'canary', '100');

$t->stop;

done_testing;
