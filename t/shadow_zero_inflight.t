#!/usr/bin/perl

# Story: "shadow 0" arrives through Redis while shadows are in flight
# (the fast path of shadow 0: the handler tests the percent first, the
# filters a worker's count of live comparisons).  The canary answers
# after 6 s (time to spare under AddressSanitizer and a loaded machine);
# at 100, 6 client requests each send a shadow and return at once; then
# Redis says 0 before any shadow has its answer.  Each of
# the 6 still ends compared and matched (the filters run for them though
# the percent is 0), the requests made at 0 send none, the same worker
# (one worker) mirrors and compares again when Redis says 100, and an
# internal redirect (error_page to a named location) at 0 sends none.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use CanaryTest;
use RedisStory qw(:all);
use Traffic;

my $KEY = 'canary:app';

my $t = CanaryTest->new;
my $port = $t->port('http');
my $slow = $t->port('slow');
my $st = $t->port('stable');
my $redis = '127.0.0.1:' . $t->redis_port;

$t->redis_start;
Traffic::slow_origin($t, $slow, 6000, "same\n");

$t->write_conf(<<"END", workers => 1);
    canary_zone canary 1m;
    canary_redis $redis interval=100ms timeout=200ms;

    canary_split app {
        stable stable_up;
        canary canary_up;
        weight 0;
        shadow 0 timeout=30s;
    }

    upstream stable_up { server 127.0.0.1:$st; }
    upstream canary_up { server 127.0.0.1:$slow; }

    server {
        listen 127.0.0.1:$st;
        default_type text/plain;
        location / { return 200 "same\\n"; }
        location /missing { return 404 "nope\\n"; }
    }

    server {
        listen 127.0.0.1:$port;

        location / {
            canary app;
            proxy_pass http://\$canary_upstream;
        }

        location /redir {
            canary app;
            proxy_intercept_errors on;
            error_page 404 = \@again;
            proxy_pass http://\$canary_upstream/missing;
        }

        location \@again {
            canary app;
            proxy_pass http://\$canary_upstream;
        }

        location = /canary_status { canary_status; }
    }
END

$t->start;

sub shadow { status_json($t)->{splits}{app}{shadow} }

sub percent {
    my ($p) = @_;
    $t->redis_cli('HSET', $KEY, 'shadow', $p);
    $t->redis_cli('PUBLISH', $KEY, 'shadow');
    return wait_until(5, sub { shadow()->{percent} == $p });
}

sub get_n {
    my ($n, $path) = @_;
    my $ok = 0;
    for my $i (1 .. $n) {
        my $r = $t->get($port, $path // "/r$i", { 'X-Tenant-Id' => "t$i" });
        $ok++ if $r->{status} == 200 && $r->{content} eq "same\n";
    }
    return $ok;
}

ok percent(100), 'Redis: shadow 100';
is get_n(6), 6, '6 clients get stable at once';
is shadow()->{requests}, 6, '6 shadows sent';

ok percent(0), 'Redis: shadow 0';
is shadow()->{compared}, 0, 'the 6 shadows still in flight: the canary is slow';
is get_n(4), 4, '4 more clients at 0';
is get_n(2, '/redir'), 2, '2 through an internal redirect at 0';

ok wait_until(30, sub { shadow()->{compared} >= 6 }),
    'the 6 in flight end compared though the percent is 0'
    or diag explain shadow();
my $sh = shadow();
is $sh->{requests}, 6, 'none sent at 0, redirected or not';
is $sh->{matched}, 6, 'each a match';
is $sh->{canary_errors} + $sh->{timeouts}, 0, 'no error, no timeout';

ok percent(100), 'Redis: shadow 100 again';
is get_n(2), 2, '2 clients';
ok wait_until(30, sub { shadow()->{compared} >= 8 }),
    'their shadows compared too' or diag explain shadow();
is shadow()->{matched}, 8, 'and matched';

$t->stop;

done_testing;
