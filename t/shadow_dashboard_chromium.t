#!/usr/bin/perl

# Story: the dashboard shows a split's shadow traffic: its percent, match
# rate of compared, mismatches by kind, and the last mismatches with
# their URIs, as text (a URI is a client's: markup in it stays text).
# Real headless Chromium renders the page from a test nginx.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Encode qw(decode);
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep);
use CanaryTest;

my $CHROMIUM = (grep { -x } '/usr/bin/chromium', '/usr/bin/chromium-browser')[0];
plan skip_all => 'chromium is not installed (scripts/install-deps.sh)'
    unless $CHROMIUM;

my $t = CanaryTest->new;
my $port = $t->port('http');

$t->write_conf(<<"END");
    canary_zone canary 4m;

    canary_split api {
        stable stable_up;
        canary canary_up;
        weight 0;
        shadow 100;
    }

    canary_split plain {
        stable stable_up;
        canary canary_up;
        weight 0;
    }

${\ $t->origins }
    server {
        listen 127.0.0.1:$port;

        location /plain { canary plain; proxy_pass http://\$canary_upstream; }
        location / { canary api; proxy_pass http://\$canary_upstream; }
        location = /canary_status { canary_status; }
        location = /favicon.ico { return 404; }
    }
END

$t->start;

# the origins differ: every shadow is a body mismatch
my $hostile = '/x?<img%20src=y%20onerror=alert(1)>';
$t->get($port, $_) for '/a', '/b', $hostile;

my $sh;
for (1 .. 100) {
    my $r = $t->get($port, '/canary_status');
    $sh = decode_json($r->{content})->{splits}{api}{shadow};
    last if $sh->{compared} == 3;
    sleep 0.1;
}
is($sh->{mismatched}{body}, 3, 'three body mismatches to show');

my @flags = ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
             '--no-first-run', '--disable-background-networking',
             '--disable-component-update', '--disable-sync',
             '--virtual-time-budget=4000');
my $url = "http://127.0.0.1:$port/canary_status?format=html";
my $profile = $t->prefix . '/chromium';

my $dom = `$CHROMIUM @flags --user-data-dir=$profile --dump-dom '$url' 2>/dev/null`;
is($?, 0, 'chromium --dump-dom exits 0');
$dom = decode('UTF-8', $dom);

my ($api) = $dom =~ /(data-split="api".*?)(?=data-split=|$)/s;
my ($plain) = $dom =~ /(data-split="plain".*?)(?=data-split=|$)/s;

ok(defined $api, 'the split is rendered');
like($api, qr/data-field="shadow-percent">100 %</, 'its shadow percent');
like($api, qr/data-field="shadow-match-rate">0\.000 %</, 'its match rate');
like($api, qr/data-field="shadow-compared">3 compared</, 'compared');
like($api, qr/data-field="shadow-mismatched-body">3</, 'body mismatches');
like($api, qr/data-field="shadow-mismatched-status">0</, 'status ones');

my @uris = $api =~ /data-field="shadow-uri">([^<]*)</g;
is(scalar @uris, 3, 'three examples listed');
is($uris[0], '/x?&lt;img%20src=y%20onerror=alert(1)&gt;',
   'the newest first; markup in a URI stays text');
unlike($api, qr/<img/, 'no element made from a URI');

unlike($plain // '', qr/data-field="shadow"/,
       'a split without shadow shows no shadow line');

$t->stop;

done_testing;
