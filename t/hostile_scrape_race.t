#!/usr/bin/perl

# Story: a Prometheus scraper reads /canary_status?format=prometheus as
# fast as it can while 4 workers count requests flat out.  Every scrape
# must be a valid histogram: buckets cumulative, the le="+Inf" bucket
# equal to _count, never below a finite bucket.
#
# Workers add while the page reads the zone: a histogram whose _count
# came from the request counter, read at another moment than the
# buckets, once showed le="+Inf" below the le before it (t/soak.t saw it
# once in 296 scrapes).  _count is now the sum of the buckets as read;
# this reads a few thousand scrapes to keep it so.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use HTTP::Tiny;
use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;
use Traffic;

my $SECONDS = 20;

my $t = CanaryTest->new;
my $port = $t->port('http');

$t->write_conf(<<"EOF", workers => 4);
    canary_zone canary 1m;

    canary_split app {
        stable stable_up;
        canary canary_up;
        weight 50;
    }

${\ $t->origins }
    server {
        listen 127.0.0.1:$port;

        location / {
            canary app;
            proxy_pass http://\$canary_upstream;
        }

        location = /canary_status {
            canary_status;
        }
    }
EOF

$t->start;

# 200 keep-alive connections, 5000 tenants in turn
my $load = Traffic->start(port => $port, clients => 2, connections => 100,
                          seconds => $SECONDS, tenants => 5000);

my $http = HTTP::Tiny->new(keep_alive => 1, timeout => 5);
my ($scrapes, $failed, $bad, @first) = (0, 0, 0);

# what each scrape must hold, or a change of format would pass unread:
# two histogram families (request and upstream time) of two variants,
# each of 81 bounds and +Inf
my $HISTOGRAMS = 4;
my $BUCKETS = 82;
my ($misshapen, $last_inf, @shape) = (0, 0);

sleep 1;

while ($load->running) {
    my $r = $http->get("http://127.0.0.1:$port/canary_status"
                       . '?format=prometheus');

    if ($r->{status} != 200) {
        $failed++;
        next;
    }

    $scrapes++;

    my (%last, %inf, %count, %buckets);

    for (split /\n/, $r->{content}) {
        if (/^(\w+)_bucket\{(.*),le="([^"]+)"\} (\d+)$/) {
            my $s = "$1\{$2}";

            $buckets{$s}++;

            if (defined $last{$s} && $4 < $last{$s}) {
                $bad++;
                push @first, "$s le=\"$3\" $4 after $last{$s}"
                    if @first < 5;
            }

            $last{$s} = $4;
            $inf{$s} = $4 if $3 eq '+Inf';

        } elsif (/^(\w+)_count\{(.*)\} (\d+)$/) {
            $count{"$1\{$2}"} = $3;
        }
    }

    for my $s (keys %inf) {
        $bad++ if !defined $count{$s} || $count{$s} != $inf{$s};
    }

    my @full = grep { $buckets{$_} == $BUCKETS && defined $inf{$_} }
               keys %buckets;

    if (keys %buckets != $HISTOGRAMS || @full != $HISTOGRAMS) {
        $misshapen++;
        @shape = map { "$_: $buckets{$_} buckets" } sort keys %buckets
            unless @shape;
    }

    $last_inf = 0;
    $last_inf += $_ for values %inf;
}

my $requests = $load->wait->{responses};

diag("$scrapes scrapes during $requests requests; $bad histograms not "
     . 'cumulative');

cmp_ok($scrapes, '>', 100, "$scrapes scrapes under load");
is($failed, 0, 'every scrape answered');
is($misshapen, 0, "every scrape held $HISTOGRAMS histograms of $BUCKETS "
   . 'buckets, +Inf included') or diag(join "\n", @shape);
cmp_ok($last_inf, '>', 1000, "the last scrape counted $last_inf requests "
       . 'in its +Inf buckets');
is($bad, 0, 'every histogram of every scrape cumulative up to +Inf == '
   . '_count') or diag(join "\n", @first);

$t->stop;

done_testing;
