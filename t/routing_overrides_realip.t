#!/usr/bin/perl

# Story: nginx sits behind a load balancer (127.0.0.2 here) that puts the
# client's address in X-Forwarded-For; nginx trusts it with
# "set_real_ip_from 127.0.0.2; real_ip_header X-Forwarded-For;".  The
# split's employee override trusts only the office network:
#     override X-Employee true canary from=10.0.0.0/8;
# The lab override trusts the lab network, where the balancer happens to
# be too:
#     override X-Lab true canary from=127.0.0.0/8;
# The README promises that from= is checked "after real_ip": against the
# client address nginx ends up with.  A security promise, so both ways:
#
#   - through the trusted balancer, a client at 10.1.2.3 is an employee;
#     a client at 192.168.1.5 is not, nor is one that put a forged
#     10.x address in front of the one the balancer appended, nor the
#     balancer itself;
#   - from a peer that is not trusted (127.0.0.1), X-Forwarded-For is
#     ignored: forging 10.1.2.3 gets nobody on canary;
#   - an outside client (203.0.113.9) through the balancer forging
#     X-Lab: true is not in the lab: ignored, though the balancer is.
#
# The QA cookie is trusted from the office network too:
#     cookie qa from=10.0.0.0/8;
#
# The same with the realip directives in the location (realip then runs
# in the preaccess phase, where the module also decides), also when a
# $canary_* variable is read in that location's rewrite phase, before
# realip ran ("set"), and in the upstream form (canary_balancer, which
# decides when the upstream starts).  $remote_addr is shown beside each
# decision.
#
# Realip in the location was a security defect (issue 16): the module's
# preaccess handler ran before realip's (nginx runs a phase's handlers in
# the reverse order of registration, and a dynamic module registers
# after the built-in realip), so from= saw the balancer's address: the
# employee was refused and the forged X-Lab accepted.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use CanaryTest;

my $t = CanaryTest->new;
my %port = map { $_ => $t->port($_) } qw(http loc set early);

my $realip = 'set_real_ip_from 127.0.0.2; real_ip_header X-Forwarded-For;';

$t->write_conf(<<"EOF", workers => 2);
    canary_zone canary 1m;

    canary_split app {
        stable stable_up;
        canary canary_up;
        weight 0;
        override X-Employee true canary from=10.0.0.0/8;
        override X-Lab      true canary from=127.0.0.0/8;
        cookie   qa from=10.0.0.0/8;
    }

    upstream app_api { canary_balancer app; }

${\ $t->origins }
    # realip for the whole server: done when the request is read
    server {
        listen 127.0.0.1:$port{http};
        listen 127.0.0.2:$port{http};
        $realip

        location / {
            canary app;
${\ CanaryTest::expose_vars() }
            add_header X-Remote-Addr \$remote_addr always;
            proxy_pass http://\$canary_upstream;
        }

        location /balancer/ {
${\ CanaryTest::expose_vars() }
            add_header X-Remote-Addr \$remote_addr always;
            proxy_pass http://app_api;
        }
    }

    # realip in the location only: done in the preaccess phase
    server {
        listen 127.0.0.1:$port{loc};
        listen 127.0.0.2:$port{loc};

        location / {
            $realip
            canary app;
${\ CanaryTest::expose_vars() }
            add_header X-Remote-Addr \$remote_addr always;
            proxy_pass http://\$canary_upstream;
        }
    }

    # \$canary_upstream taken at the server level, before the location's
    # realip: the request goes by that decision, and is counted by it
    server {
        listen 127.0.0.1:$port{early};
        listen 127.0.0.2:$port{early};
        canary app;
        set \$u \$canary_upstream;

        location / {
            $realip
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$u;
        }
    }

    # the same, with the decision asked for before realip ran
    server {
        listen 127.0.0.1:$port{set};
        listen 127.0.0.2:$port{set};

        location / {
            $realip
            canary app;
            set \$early \$canary_variant;
${\ CanaryTest::expose_vars() }
            add_header X-Remote-Addr \$remote_addr always;
            proxy_pass http://\$canary_upstream;
        }
    }
EOF
$t->start;

my @cases = (
    # peer         X-Forwarded-For          client       on canary?
    ['127.0.0.2', '10.1.2.3',               '10.1.2.3',    1,
     'a client in 10/8 through the trusted balancer'],
    ['127.0.0.2', '203.0.113.9',            '203.0.113.9', 0,
     'an outside client through the balancer (in the lab net) forging '
     . 'X-Lab', 'X-Lab'],
    ['127.0.0.2', '192.168.1.5',            '192.168.1.5', 0,
     'a client outside 10/8 through the trusted balancer'],
    ['127.0.0.2', '10.9.9.9, 192.168.1.5',  '192.168.1.5', 0,
     'a forged 10.x in front of the address the balancer appended'],
    ['127.0.0.2', undef,                    '127.0.0.2',   0,
     'the balancer itself, without X-Forwarded-For'],
    ['127.0.0.1', '10.1.2.3',               '127.0.0.1',   0,
     'X-Forwarded-For: 10.1.2.3 forged by a peer that is not trusted'],
    ['127.0.0.1', undef,                    '127.0.0.1',   0,
     'a peer that is not trusted, without X-Forwarded-For'],
    ['127.0.0.2', '10.1.2.3',               '10.1.2.3',    1,
     'the QA cookie of a client in 10/8 through the trusted balancer',
     'Cookie', 'qa=always'],
    ['127.0.0.2', '192.168.1.5',            '192.168.1.5', 0,
     'the QA cookie of a client outside 10/8 through the balancer',
     'Cookie', 'qa=always'],
    ['127.0.0.1', '10.1.2.3',               '127.0.0.1',   0,
     'the QA cookie with X-Forwarded-For forged by an untrusted peer',
     'Cookie', 'qa=always'],
);

# one decision per request: where it went is what the variables say
for my $xff ('10.1.2.3', '203.0.113.9') {
    my $res = $t->get($port{early}, '/', {
            'X-Tenant-Id' => 'tenant-1', 'X-Employee' => 'true',
            'X-Forwarded-For' => $xff },
        local_address => '127.0.0.2');
    my $d = CanaryTest::decision($res);

    is $d->{variant}, $d->{side}, "\$canary_upstream read before realip, "
        . "client $xff: the variables say the side that answered";
}

for my $where (['server', $port{http}, '/'],
               ['location', $port{loc}, '/'],
               ['location, variable read before it,', $port{set}, '/'],
               ['canary_balancer', $port{http}, '/balancer/'])
{
    my ($form, $p, $path) = @$where;

    for my $c (@cases) {
        my ($peer, $xff, $client, $employee, $what, $header, $value) = @$c;

        my $res = $t->get($p, $path, {
                'X-Tenant-Id' => 'tenant-1',
                ($header // 'X-Employee') => ($value // 'true'),
                defined $xff ? ('X-Forwarded-For' => $xff) : () },
            local_address => $peer);
        my $d = CanaryTest::decision($res);
        my $remote = $res->{headers}{'x-remote-addr'} // '-';
        my $by = ($header // '') eq 'Cookie' ? 'cookie' : 'header';
        my $want = $employee ? "canary/$by" : 'stable/hash';
        my $got = ($d->{side} // '-') . '/' . ($d->{reason} // '-');

        is $remote, $client, "$form realip, $what: client $client";

        is $got, $want, "$form realip, $what: "
            . ($employee ? "the $by applies" : "the $by is ignored");
    }
}

$t->stop;

done_testing;
