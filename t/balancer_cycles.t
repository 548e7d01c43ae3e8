#!/usr/bin/perl

# Story: a canary_balancer upstream may hand requests over to another
# canary_balancer upstream (a split inside a split), but never in a
# circle: "upstream a { canary_balancer sa; }" whose split sends a side
# to "b", whose split sends a side back to "a", would hand every request
# round the circle until the worker dies of its stack (signal 11, issue
# 16 defect 5).  nginx -t refuses any circle, however long, whichever
# side it goes through, and names the upstreams on it; a chain without a
# circle still passes and routes.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use CanaryTest;

my $t = CanaryTest->new(name => 'balancer cycles');
my $port = $t->port('http');

# an upstream NAME_api with canary_balancer over split NAME, whose sides
# are the given upstreams
sub balancer {
    my ($name, $stable, $canary, $extra) = @_;

    $extra //= '';

    return <<"EOF";
    canary_split $name { stable $stable; canary $canary; weight 0; }
    upstream ${name}_api { canary_balancer $name; $extra }
EOF
}

sub conf {
    my (@balancers) = @_;

    return <<"EOF";
    canary_zone canary 4m;

@balancers
${\ $t->origins }
    server {
        listen 127.0.0.1:$port;

        location / {
${\ CanaryTest::expose_vars() }
            proxy_pass http://a_api;
        }
    }
EOF
}

sub refused {
    my ($what, $conf, @re) = @_;

    $t->write_conf($conf);
    my ($ok, $out) = $t->nginx_t;

    my @missing = grep { $out !~ $_ } @re;

    ok(!$ok && !@missing && $out =~ /\[emerg\]/ && $out =~ /test failed/,
       "$what: nginx -t refuses it, naming the upstreams")
        or diag("exit ok: " . ($ok ? 1 : 0) . "\nmissing: @missing\n"
                . "output:\n$out");
}


refused('a -> b -> a, through the stable sides',
        conf(balancer('a', 'b_api', 'canary_up'),
             balancer('b', 'a_api', 'canary_up')),
        qr/canary_balancer upstreams route in a circle: "a_api" -> "b_api" -> "a_api"/);

refused('a -> b -> c -> a',
        conf(balancer('a', 'stable_up', 'b_api'),
             balancer('b', 'c_api', 'canary_up'),
             balancer('c', 'stable_up', 'a_api')),
        qr/in a circle: "a_api" -> "b_api" -> "c_api" -> "a_api"/);

refused('a -> b -> c -> b: a circle that a only leads into',
        conf(balancer('a', 'b_api', 'canary_up'),
             balancer('b', 'stable_up', 'c_api'),
             balancer('c', 'b_api', 'canary_up')),
        qr/in a circle: "b_api" -> "c_api" -> "b_api"/);

refused('a circle through an upstream that keepalive wraps',
        conf(balancer('a', 'b_api', 'canary_up', 'keepalive 4;'),
             balancer('b', 'a_api', 'canary_up', 'keepalive 4;')),
        qr/in a circle: "a_api" -> "b_api" -> "a_api"/);

refused('a split naming its own upstream',
        conf(balancer('a', 'stable_up', 'a_api')),
        qr/canary_balancer of upstream "a_api" routes to itself/);


# a chain without a circle, with one group reached twice: passes, routes

$t->write_conf(conf(balancer('a', 'b_api', 'c_api'),
                    balancer('b', 'c_api', 'canary_up'),
                    balancer('c', 'stable_up', 'canary_up')));

my ($ok, $out) = $t->nginx_t;
ok($ok, 'a -> b -> c and a -> c, no circle: nginx -t passes') or diag($out);

$t->start;

my $res = $t->get($port, '/', { 'X-Tenant-Id' => 'tenant-1' });
is($res->{status}, 200, 'a request through the chain is served');
like($res->{content}, qr/^stable stable_up$/m,
     'by the stable group at the end of the chain');

$t->stop;

done_testing;
