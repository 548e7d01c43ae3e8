#!/usr/bin/perl

# Story: "stable" and "canary" name an upstream{} block or a host:port.  A
# configuration that "nginx -t" accepts must route: an address given as
# host:port either reaches that origin, or is refused by "nginx -t" with a
# message naming it.  It must never pass the test and then fail every
# request of one side at run time (for a host name, proxy_pass with a
# variable needs a resolver; a port that is no number can never work).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use CanaryTest;

my $t = CanaryTest->new;
my $port = $t->port('http');
my $origin = $t->port('origin:canary_up');

sub conf {
    my ($canary) = @_;

    $t->write_conf(<<"EOF");
    canary_zone canary 4m;

    canary_split app {
        stable stable_up;
        canary $canary;
        weight 100;
    }

${\ $t->origins }
    server {
        listen 127.0.0.1:$port;
        canary app;

        location / {
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }
    }
EOF
}

for my $case (["127.0.0.1:$origin", 'an IP address and port'],
              ["localhost:$origin", 'a host name and port'],
              ['canary_up:http', 'a port that is no number'])
{
    my ($addr, $what) = @$case;

    conf($addr);
    my ($ok, $out) = $t->nginx_t;

    if (!$ok) {
        like($out, qr/\Q$addr\E/,
             "canary $addr ($what): refused by nginx -t, naming it");
        next;
    }

    my $mark = $t->log_mark;
    $t->start;

    my $d = $t->route($port, '/', { 'X-Tenant-Id' => 'tenant' });

    ok($d->{status} == 200 && ($d->{side} // '') eq 'canary',
       "canary $addr ($what): accepted by nginx -t, so requests reach the "
       . "canary origin (status $d->{status})")
        or diag(join "\n", grep { /\[error\]/ } split /\n/,
                           $t->log_since($mark));

    $t->stop;
}

done_testing;
