#!/usr/bin/perl

# Story: an SRE opens /canary_status in a browser on an air-gapped host.
# Real headless Chromium loads the page from a test nginx; the page needs
# nothing but nginx (no external scripts, fonts or CDNs), fetches the
# JSON itself and shows, per split, weight and state and both variants
# side by side with the numbers the JSON has.  A screenshot is kept in
# build/artifacts/dashboard.png.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Path qw(make_path);
use JSON::PP;
use Test::More;
use CanaryTest;

my $CHROMIUM = (grep { -x } '/usr/bin/chromium', '/usr/bin/chromium-browser')[0];
plan skip_all => 'chromium is not installed (scripts/install-deps.sh)'
    unless $CHROMIUM;

my $t = CanaryTest->new;
my $port = $t->port('http');
my $cn = $t->port('canary');

$t->write_conf(<<"EOF", workers => 2);
    canary_zone canary 4m;

    upstream cn { server 127.0.0.1:$cn; }

    canary_split checkout {
        stable stable_up; canary cn; weight 30;
        guard error_rate=90 min_requests=100000;
    }

    ${\ $t->origins }

    server {
        listen 127.0.0.1:$cn;
        location / {
            if (\$arg_fail) { return 500; }
            return 200 "canary cn\\n";
        }
    }

    server {
        listen 127.0.0.1:$port;

        location / {
            canary checkout;
            proxy_pass http://\$canary_upstream;
        }

        location = /canary_status {
            canary_status;
            access_log ${\ $t->prefix }/status_access.log;
        }

        # the browser asks for it: not a routed request
        location = /favicon.ico { return 204; }
    }
EOF
$t->start;

# canary tenants fail one request in five
my @reqs = map { { path => '/?fail=' . ($_ % 5 == 0 ? 1 : ''),
                   headers => ['X-Tenant-Id' => "t$_"] } } 1 .. 600;
$t->request_many($port, \@reqs);

my $json = decode_json($t->get($port, '/canary_status')->{content});
my $s = $json->{splits}{checkout};

my $page = $t->get($port, '/canary_status?format=html');
is($page->{status}, 200, 'the dashboard is served');
like($page->{headers}{'content-type'}, qr{^text/html}, 'as text/html');
unlike($page->{content}, qr{<script[^>]+src=|<link[^>]+href=|\@import|url\(}i,
       'self-contained: no external script, stylesheet, font or image');
(my $urls = $page->{content}) =~ s{http://www\.w3\.org/2000/svg}{}g;
unlike($urls, qr{https?://}i,
       'no absolute URL but the SVG namespace name, which is never fetched');

my $browser = $t->get($port, '/canary_status',
                      { Accept => 'text/html,application/xhtml+xml,*/*' });
like($browser->{headers}{'content-type'}, qr{^text/html},
     "a browser's Accept header gets the dashboard");

my @flags = ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
             '--no-first-run', '--disable-background-networking',
             '--disable-component-update', '--disable-sync',
             '--virtual-time-budget=4000');
my $url = "http://127.0.0.1:$port/canary_status?format=html";

my $profile = $t->prefix . '/chromium';
my $dom = `$CHROMIUM @flags --user-data-dir=$profile --dump-dom '$url' 2>/dev/null`;
is($?, 0, 'chromium --dump-dom exits 0 (no crash, no signal)');
ok(length $dom > 1000, 'chromium rendered the page');

my %shown;
while ($dom =~ /data-variant="(stable|canary)".*?(?=data-variant="(?:stable|canary)"|$)/gs) {
    my ($variant, $box) = ($1, $&);
    while ($box =~ /data-metric="([a-z0-9-]+)">([^<]*)</g) {
        $shown{$variant}{$1} //= $2;
    }
}

like($dom, qr/<h2>checkout<\/h2>/, 'the split is shown by name');
like($dom, qr/data-field="weight">30 %</, 'its weight');
like($dom, qr/data-field="guard">armed</, 'its guard, armed');
my $state = length($s->{state} // '') ? $s->{state} : '-';
like($dom, qr/data-field="state">\Q$state\E</, "its state, \"$state\"");
like($dom, qr/data-field="enabled">yes</, 'enabled');

for my $v (qw(stable canary)) {
    is($shown{$v}{requests}, $s->{variants}{$v}{requests},
       "$v: total requests as the JSON has them");
    like($shown{$v}{rate} // '', qr/^\d+\.\d \/s$/, "$v: a request rate");
    like($shown{$v}{$_} // '', qr/^\d+\.\d+ ms$/, "$v: a $_")
        for qw(p50 p95 p99);
}

# it refreshes itself from the JSON: every 2 s, and Chromium's virtual
# clock ran 4 s
my @fetches = grep { m{GET /canary_status\?format=json} }
              do { open my $fh, '<', $t->prefix . '/status_access.log';
                   $fh ? <$fh> : () };
cmp_ok(scalar @fetches, '>=', 2,
       'the page fetched the JSON ' . @fetches . ' times in 4 s: it refreshes');

my $w = $s->{variants}{canary}{window};
my $rate = sprintf '%.2f %%', 100 * ($w->{'5xx'} + $w->{upstream_errors})
                              / $w->{requests};
is($shown{canary}{'error-rate'}, $rate, "canary error rate $rate");
is($shown{stable}{'error-rate'}, '0.00 %', 'stable error rate 0.00 %');
like($dom, qr/<svg[^>]*class="hist"[^>]*data-variant="canary"/,
     'the canary latency histogram is drawn');

my $dir = "$FindBin::Bin/../build/artifacts";
make_path($dir);
unlink "$dir/dashboard.png";
system("$CHROMIUM @flags --user-data-dir=$profile.2 --window-size=1200,700 "
       . "--screenshot=$dir/dashboard.png '$url' >/dev/null 2>&1");
is($?, 0, 'chromium --screenshot exits 0');
ok(-s "$dir/dashboard.png" > 10_000, 'a screenshot is kept in '
   . 'build/artifacts/dashboard.png');

$t->stop;

done_testing;
