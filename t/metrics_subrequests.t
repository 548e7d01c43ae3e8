#!/usr/bin/perl

# Story: the API checks every request with auth_request, and the access
# log shows the auth subrequests too ("log_subrequest on").  The canary's
# counters must still count each client request once, on its variant,
# with what the client got: under issue 16 defect 6 the auth subrequest
# was counted again (3 requests became 6 responses, half of them the
# auth's 204), which diluted the canary's error rate.  Checked in the
# variable form and the upstream form (canary_balancer), with an auth
# that allows (the client gets the origin's answer) and one that denies
# (the client gets 401, counted once as a 4xx).  An auth service with a
# rollout of its own (its location under another split) decides for its
# subrequest, which is counted on that split, once; the client request
# keeps its decision and is counted on it.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use CanaryTest;

my $t = CanaryTest->new;
my $port = $t->port('http');
my $down = $t->port('nothing listens here');

$t->write_conf(<<"EOF", workers => 2);
    canary_zone canary 4m;
    log_subrequest on;

    canary_split allow  { stable stable_up; canary canary_up; weight 100; }
    canary_split deny   { stable stable_up; canary canary_up; weight 100; }
    canary_split upform { stable stable_up; canary canary_up; weight 100; }
    canary_split mixed  { stable stable_up; canary canary_up; weight 100; }
    canary_split authz  { stable stable_up; canary canary_up; weight 0; }
    canary_split authfb { stable down_up; canary canary_up; weight 0; }

    upstream down_up { server 127.0.0.1:$down; }

    upstream upform_api { canary_balancer upform; }

${\ $t->origins }
    server {
        listen 127.0.0.1:$port;

        location /allow {
            canary allow;
            auth_request /auth_ok;
            proxy_pass http://\$canary_upstream;
        }

        location /deny {
            canary deny;
            auth_request /auth_no;
            proxy_pass http://\$canary_upstream;
        }

        location /upform {
            auth_request /auth_ok;
            proxy_pass http://upform_api;
        }

        # the auth service has a rollout of its own
        location /mixed {
            canary mixed;
            auth_request /auth_split;
            proxy_pass http://stable_up;
        }

        location = /auth_split {
            internal;
            canary authz;
            proxy_pass http://\$canary_upstream;
        }

        # the auth service's stable is down; its error_page goes to a
        # named location that says no split: the subrequest's own
        # decision holds there too, it must not fall back to the client
        # request's (split "mixed", whose upstream would answer 200 and
        # let the request through)
        location /fallback {
            canary mixed;
            auth_request /auth_fb;
            proxy_pass http://stable_up;
        }

        location = /auth_fb {
            internal;
            canary authfb;
            proxy_pass http://\$canary_upstream;
            error_page 502 = \@auth_fb_again;
        }

        location \@auth_fb_again { proxy_pass http://\$canary_upstream; }

        location = /auth_ok { internal; return 204; }
        location = /auth_no { internal; return 401; }

        location = /canary_status { canary_status; }
    }
EOF
$t->start;

sub variants {
    my ($split) = @_;

    my $r = $t->get($port, '/canary_status');
    return $r->{status} == 200
           ? decode_json($r->{content})->{splits}{$split}{variants} : {};
}

# the main request is logged after its subrequests: once it is counted,
# everything of it is
sub settled {
    my ($split, $want) = @_;
    my $v;

    for (1 .. 40) {
        $v = variants($split);
        last if $v->{stable}{requests} + $v->{canary}{requests} >= $want;
        select undef, undef, undef, 0.05;
    }

    return $v;
}

for my $case (['allow',  '/allow',  200, '2xx'],
              ['deny',   '/deny',   401, '4xx'],
              ['upform', '/upform', 200, '2xx'])
{
    my ($split, $path, $status, $class) = @$case;

    my $res = $t->request_many($port,
        [ map { { path => $path, headers => ['X-Tenant-Id' => "t$_"] } }
          1 .. 3 ], clients => 1);

    is(scalar(grep { $_->{status} == $status } @$res), 3,
       "$split: the clients got $status three times");

    my $v = settled($split, 3);
    my $c = $v->{canary};

    is($c->{requests}, 3, "$split: 3 client requests, 3 counted");
    is($c->{responses}{$class}, 3, "$split: all 3 as $class, "
                                   . 'what the clients got');
    is($c->{responses}{'2xx'} + $c->{responses}{'4xx'}, 3,
       "$split: no response of the auth subrequest among them");
    is($c->{latency}{count}, 3, "$split: one latency sample per request");
    is($c->{window}{requests}, 3, "$split: 3 in the window");
    is($v->{stable}{requests}, 0, "$split: nothing on stable at weight 100");
}

# a subrequest under another split decides for itself; the client request
# keeps its decision and is counted on it, once
my $res = $t->request_many($port,
    [ map { { path => '/mixed', headers => ['X-Tenant-Id' => "t$_"] } }
      1 .. 3 ], clients => 1);

is(scalar(grep { $_->{status} == 200 } @$res), 3,
   'an auth subrequest under another split: the clients got 200');

my $m = settled('mixed', 3);
is($m->{canary}{requests}, 3, 'the client requests counted on their split');

my $a = settled('authz', 3);
is($a->{stable}{requests} + $a->{canary}{requests}, 3,
   'the auth subrequests counted on their own split, once each');

# an auth subrequest redirected to a named location keeps its own split
$t->allow_log(qr/connect\(\) failed|auth request unexpected status/);

$res = $t->request_many($port,
    [ map { { path => '/fallback', headers => ['X-Tenant-Id' => "t$_"] } }
      1 .. 3 ], clients => 1);

is(scalar(grep { $_->{status} == 500 } @$res), 3,
   'a redirected auth subrequest still goes to its split\'s (down) '
   . 'upstream: the clients are refused, not let through')
    or diag explain [ map { $_->{status} } @$res ];

$t->stop;

done_testing;
