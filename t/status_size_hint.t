#!/usr/bin/perl

# Story: a worker sizes the status page's buffer from its last page in
# that format.  A page that outgrew it (a small split asked alone, then
# every split, one with 16 shadow examples of 256 escaped bytes) is
# rendered once more and whole: the same bytes as the next page, which
# fits the size learnt.  Prometheus pages of every size stay whole too.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use CanaryTest;

my $t = CanaryTest->new;
my $port = $t->port('http');
my $st = $t->port('st');
my $ca = $t->port('ca');

$t->write_conf(<<"EOF", log_level => 'debug');
    canary_zone canary 4m;

    upstream st { server 127.0.0.1:$st; }
    upstream ca { server 127.0.0.1:$ca; }

    canary_split small { stable st; canary ca; weight 0; }
    canary_split big { stable st; canary ca; weight 0; shadow 100; }

    server {
        listen 127.0.0.1:$st;
        location / { return 200 "stable\\n"; }
    }

    server {
        listen 127.0.0.1:$ca;
        location / { return 404 "canary\\n"; }
    }

    server {
        listen 127.0.0.1:$port;

        location /big/ { canary big; proxy_pass http://\$canary_upstream; }
        location = /canary_status { canary_status; }
    }
EOF
$t->start;

# mismatches with the longest URIs kept, of bytes JSON escapes 6 to 1
for my $i (1 .. 20) {
    $t->get($port, '/big/' . ("\xff" x 251));
}

sub same_page {
    my ($format, $what) = @_;

    my $r = $t->get($port, "/canary_status?format=$format");
    my $again = $t->get($port, "/canary_status?format=$format");

    is($r->{status}, 200, "$format, $what: 200");
    is($r->{headers}{'content-length'}, length $r->{content},
       "$format, $what: Content-Length is the page's");

    my ($a, $b) = ($r->{content}, $again->{content});

    # the clock's numbers aside: the time, the windows' seconds
    if ($format eq 'json') {
        ok(eval { decode_json($r->{content}) }, "json, $what: valid");
        s/"(time|seconds)":\d+//g for $a, $b;
    }

    is($a, $b, "$format, $what: the same page as the next one");

    return $r->{content};
}

for my $format (qw(json prometheus)) {
    my $mark = $t->log_mark;

    # the size learnt: a page of the small split alone
    my $r = $t->get($port, "/canary_status?format=$format&split=small");
    is($r->{status}, 200, "$format: the small split alone");

    my $page = same_page($format, 'after the small split');

    if ($format eq 'json') {
        like($page, qr/(\\u00ff){251}/, 'json: the examples are there');
        like($t->log_since($mark),
             qr/canary status: \d+ bytes, over the \d+ expected/,
             'json: over the size expected, rendered once more');
    }

    same_page($format, 'again');
}

$t->stop;

done_testing;
