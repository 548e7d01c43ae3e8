#!/usr/bin/perl

# Story (review of the "hot" shortcuts): the preaccess handler is only
# registered when some "canary SPLIT" exists, and a decision already made
# is taken without decide_split().  A configuration with only
# canary_balancer, reloaded to one with a "canary" location (and back),
# counts exactly the requests it counted before; internal redirects
# (rewrite ... last, error_page to a named location, try_files) keep or
# remake the decision as before ("canary off" has none), and a location of another split after a
# server-level one decides again, and SSI subrequests decide for
# themselves under another split only.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP qw(decode_json);
use Test::More;
use CanaryTest;

my $t = CanaryTest->new;
my $port = $t->port('http');

sub conf {
    my ($with_canary) = @_;

    my $loc = $with_canary ? <<"EOF" : '';
        location = /plain {
            canary app;
            proxy_pass http://stable_up;
        }
EOF

    return <<"EOF";
    canary_zone canary 4m;

    canary_split app {
        stable stable_up;
        canary canary_up;
        weight 50;
        salt s1;
    }

    canary_split other {
        stable stable_up;
        canary canary_up;
        weight 50;
        salt other-salt;
    }

    upstream both { canary_balancer app; }

${\ $t->origins }
    server {
        listen 127.0.0.1:$port;

        location = /bal {
            proxy_pass http://both;
        }

$loc
        location = /canary_status { canary_status; }
    }
EOF
}

sub counted {
    my ($split) = @_;

    my $r = $t->get($port, '/canary_status');
    return -1 unless $r->{status} == 200;

    my $v = decode_json($r->{content})->{splits}{$split}{variants};

    return $v->{stable}{requests} + $v->{canary}{requests};
}

sub settle {
    my ($split, $want) = @_;
    my $n;

    for (1 .. 40) {
        $n = counted($split);
        last if $n >= $want;
        select undef, undef, undef, 0.05;
    }

    return $n;
}

$t->write_conf(conf(0), workers => 1);
$t->start;

my $base = counted('app');

for (1 .. 3) {
    is $t->get($port, '/bal', { 'X-Tenant-Id' => "t$_" })->{status}, 200,
       "balancer only: request $_";
}
is settle('app', $base + 3), $base + 3, 'balancer only: 3 counted';

$t->write_conf(conf(1), workers => 1);
$t->reload;

$base = counted('app');

for (1 .. 4) {
    is $t->get($port, '/plain', { 'X-Tenant-Id' => "p$_" })->{status}, 200,
       "after adding \"canary app\": request $_";
}
is settle('app', $base + 4), $base + 4,
   'a "canary" location without variables is counted after the reload';

$t->write_conf(conf(0), workers => 1);
$t->reload;

$base = counted('app');
is $t->get($port, '/plain')->{status}, 404, 'the location is gone';
is $t->get($port, '/bal', { 'X-Tenant-Id' => 'z' })->{status}, 200,
   'balancer after the reverse reload';
is settle('app', $base + 1), $base + 1, 'counted once';

$t->stop;

# ---- redirects -------------------------------------------------------

my $t2 = CanaryTest->new;
my $p2 = $t2->port('http');

$t2->write_conf(<<"EOF", workers => 1);
    canary_zone canary 4m;

    canary_split app {
        stable stable_up;
        canary canary_up;
        weight 50;
        salt s1;
    }

    canary_split other {
        stable stable_up;
        canary canary_up;
        weight 50;
        salt other-salt;
    }

${\ $t2->origins }
    server {
        listen 127.0.0.1:$p2;
        canary app;

        set \$early \$canary_bucket;

        location /same {
            rewrite ^ /samedst last;
        }

        location /samedst {
            add_header X-Early \$early always;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        location /other {
            canary other;
            add_header X-Early \$early always;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        location /err {
            set \$u \$canary_upstream;
            error_page 404 = \@named;
            return 404;
        }

        location \@named {
            canary other;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        location /tf {
            try_files /nonexistent \@keep;
        }

        location \@keep {
            canary off;
${\ CanaryTest::expose_vars() }
            proxy_pass http://stable_up;
        }

        location = /ssi {
            ssi on;
            default_type text/html;
            return 200 'A:\$canary_bucket <!--# include virtual="/sub_other" --> <!--# include virtual="/sub_same" --> <!--# echo var="canary_reason" -->';
        }

        location = /sub_other {
            canary other;
            return 200 'O:\$canary_bucket';
        }

        location = /sub_same {
            return 200 'S:\$canary_bucket';
        }

        location = /canary_status { canary_status; }
    }
EOF
$t2->start;

for my $key ('k1', 'k2', 'tenant-33', 'x') {
    my $h = { 'X-Tenant-Id' => $key };
    my $res = $t2->get($p2, '/same', $h);
    my $d = CanaryTest::decision($res);

    is $d->{bucket}, CanaryTest::bucket('s1', $key),
       "rewrite last, same split: bucket of $key";
    is $res->{headers}{'x-early'}, $d->{bucket},
       "rewrite last: the server-level decision kept";

    $res = $t2->get($p2, '/other', $h);
    $d = CanaryTest::decision($res);
    is $d->{bucket}, CanaryTest::bucket('other-salt', $key),
       "another split's location: decided again ($key)";
    is $res->{headers}{'x-early'}, CanaryTest::bucket('s1', $key),
       'after the server-level decision';

    $d = $t2->route($p2, '/err', $h);
    is $d->{bucket}, CanaryTest::bucket('other-salt', $key),
       "error_page to another split's named location: decided again "
       . "($key)";

    $d = $t2->route($p2, '/tf', $h);
    is $d->{status}, 200, 'try_files to a "canary off" location';
    is $d->{bucket}, undef,
       "try_files to \"canary off\": no decision there ($key)";

    my $res2 = $t2->get($p2, '/ssi', $h);
    my ($ba, $bo) = map { CanaryTest::bucket($_, $key) } qw(s1 other-salt);
    is $res2->{content}, "A:$ba O:$bo S:$ba hash",
       "SSI: a subrequest of another split decides for itself, one of the "
       . "same split shares the request's ($key)";
}

$t2->stop;
done_testing;
