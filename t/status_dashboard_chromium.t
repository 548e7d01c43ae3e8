#!/usr/bin/perl

# Story: an SRE opens /canary_status in a browser on an air-gapped host.
# Real headless Chromium loads the page from a test nginx; the page needs
# nothing but nginx (no external scripts, fonts or CDNs), fetches the
# JSON itself and shows, per split, weight and state and both variants
# side by side with the numbers the JSON has.  A screenshot is kept in
# build/artifacts/dashboard.png.
#
# It says what the proxy knows: latency under nginx's 1 ms resolution as
# "< 1 ms" (and that nginx measures whole milliseconds); the guard's own
# window and numbers beside its state (a trip's numbers are the trip's);
# the split's state and pin counts from Redis; and a window selector
# whose 10 s link shows other numbers than the 60 s view.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Encode qw(decode);
use File::Path qw(make_path);
use JSON::PP;
use Test::More;
use CanaryTest;
use RedisStory qw(ctl_ok status_json wait_until);

my $CHROMIUM = (grep { -x } '/usr/bin/chromium', '/usr/bin/chromium-browser')[0];
plan skip_all => 'chromium is not installed (scripts/install-deps.sh)'
    unless $CHROMIUM;

my $t = CanaryTest->new;
my $port = $t->port('http');
my $cn = $t->port('canary');
my $rport = $t->redis_start;
my $redis = "127.0.0.1:$rport";

$t->write_conf(<<"EOF", workers => 2);
    canary_zone canary 4m;
    canary_redis $redis interval=200ms;

    upstream cn { server 127.0.0.1:$cn; }

    canary_split checkout {
        stable stable_up; canary cn; weight 30;
        guard error_rate=90 min_requests=100000 window=60s;
    }

    # every canary request fails: its guard trips
    canary_split pay {
        stable stable_up; canary cn; weight 50;
        guard error_rate=10 min_requests=20;
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

        location /pay {
            canary pay;
            proxy_pass http://\$canary_upstream;
        }

        location = /canary_status {
            canary_status;
            access_log ${\ $t->prefix }/status_access.log;
        }

        # the page with counters read mid-update (fake.json, below)
        location = /torn/canary_status {
            if (\$arg_format = json) { rewrite ^ /fake.json last; }
            canary_status;
        }
        location = /fake.json {
            root ${\ $t->prefix };
            default_type application/json;
        }

        # the browser asks for it: not a routed request
        location = /favicon.ico { return 204; }
    }
EOF
$t->start;

# a state and pins from Redis
ctl_ok($redis, 'set-weight', 'checkout', '30');
ctl_ok($redis, 'pin', 'checkout', 'canary', 'vip1', 'vip2');
ctl_ok($redis, 'pin', 'checkout', 'stable', 'vip3');
ctl_ok($redis, 'pause', 'checkout', '--reason', 'dashboard test');
ok(wait_until(10, sub { my $c = status_json($t)->{splits}{checkout};
                        ($c->{state} // '') eq 'paused'
                        && $c->{pins}{canary} == 2
                        && $c->{pins}{stable} == 1 }), 'nginx has the state and the pins from Redis');

# canary tenants fail one request in five
my @reqs = map { { path => '/?fail=' . ($_ % 5 == 0 ? 1 : ''),
                   headers => ['X-Tenant-Id' => "t$_"] } } 1 .. 600;
$t->request_many($port, \@reqs);

# every canary request of split pay fails: its guard trips on them
$t->request_many($port, [ map { { path => '/pay?fail=1',
                                  headers => ['X-Tenant-Id' => "p$_"] } }
                          1 .. 200 ]);
ok(wait_until(10, sub { status_json($t)->{splits}{pay}{guard}{tripped} }),
   "pay's guard tripped");

my $json = decode_json($t->get($port, '/canary_status')->{content});
my $s = $json->{splits}{checkout};
my $pay = $json->{splits}{pay};

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
$dom = decode('UTF-8', $dom);

# an element's text as shown: entities undone
sub text {
    my ($html) = @_;
    $html =~ s/&lt;/</g;
    $html =~ s/&gt;/>/g;
    $html =~ s/&amp;/&/g;
    return $html;
}
ok(length $dom > 1000, 'chromium rendered the page');

my %shown;
while ($dom =~ /data-variant="(stable|canary)".*?(?=data-variant="(?:stable|canary)"|$)/gs) {
    my ($variant, $box) = ($1, $&);
    while ($box =~ /data-metric="([a-z0-9-]+)"[^>]*>([^<]*)</g) {
        $shown{$variant}{$1} //= text($2);
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
    like($shown{$v}{$_} // '', qr/^(?:< 1|\d+) ms$/,
         "$v: a $_ in whole ms, or < 1 ms") for qw(p50 p95 p99);
}

# the origins answer at once: nginx measures 0 ms, the histogram's
# quantile says a fraction of a millisecond, the page says "< 1 ms"
my $p50 = $s->{variants}{stable}{window}{p50_ms};
cmp_ok($p50, '<', 1, "stable's p50 in the JSON is under 1 ms ($p50)");
is($shown{stable}{p50}, '< 1 ms', 'and the page says "< 1 ms"');
unlike($dom, qr/>\d+\.\d+ ms</, 'no latency with sub-millisecond digits');
like($dom, qr/data-field="latency-note">[^<]*whole\s+milliseconds/,
     'the page says nginx measures in whole milliseconds');
like($dom, qr/<td [^>]*data-metric="p99"[^>]*title="[^"]*whole millisec/,
     'and the latency cells say it in a tooltip');

# the state and the pins, from Redis
like($dom, qr/data-field="state">paused</, 'the state from Redis, paused');
like($dom, qr/data-field="pins">canary 2 \x{b7} stable 1</,
     'the pin counts, canary 2, stable 1');

# the guard's own window beside its state (60 s here) with its numbers
sub guard_shown {
    my ($dom, $split) = @_;
    my ($card) = $dom =~ /data-split="\Q$split\E"(.*?)(?:data-split=|$)/s;
    my %g;
    $g{$1} = text($2)
        while ($card // '') =~ /data-field="(guard[a-z-]*)">([^<]*)</g;
    return \%g;
}

my $g = guard_shown($dom, 'checkout');
my $cur = $s->{guard}{current};
is($cur->{canary}{requests} + $cur->{stable}{requests}, 600,
   'JSON guard.current counts the 600 requests of its window');
is($g->{'guard-window-seconds'}, '60 s', "checkout's guard window: 60 s");
is($g->{'guard-canary'}, "$cur->{canary}{errors} errors of "
   . "$cur->{canary}{requests} requests", "its canary numbers, as the JSON");
is($g->{'guard-canary-rate'}, sprintf('%.2f %%', $cur->{canary}{error_rate}),
   "its canary error rate, $g->{'guard-canary-rate'}");
like($g->{'guard-limit'} // '', qr/^error rate 90\.00 %, from 100000 canary/,
     'its limit');

# a trip shows the numbers it tripped on, from the guard's 10 s window
my $gp = guard_shown($dom, 'pay');
my $tw = $pay->{guard}{windows};
like($gp->{guard} // '', qr/^TRIPPED: /, "pay's guard: TRIPPED");
is($gp->{'guard-window-seconds'}, '10 s', 'beside it, its 10 s window');
is($gp->{'guard-canary'}, "$tw->{canary}{errors} errors of "
   . "$tw->{canary}{requests} requests", 'the canary numbers it tripped on');
is($gp->{'guard-canary-rate'}, '100.00 %', 'its rate then, 100.00 %');
like($dom, qr/data-split="pay".*tripped on its/s, 'said as the trip\'s');

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

# ---- the window selector ---------------------------------------------
like($dom, qr/<a data-window="60" href="[^"]*" class="on"/,
     'the selector marks 60 s, the default');
my ($href) = map { text($_) } $dom =~ /<a data-window="10" href="([^"]+)"/;
like($href // '', qr/^\?(?=.*format=html)(?=.*window=10)/,
     "its 10 s link keeps format=html: $href");

# after 10 quiet seconds, 200 requests without a failure: the 10 s window
# has only those, the 60 s one the failures too
ok(wait_until(30, sub { my $w = decode_json($t->get($port,
                            '/canary_status?window=10')->{content})
                            ->{splits}{checkout}{variants}{canary}{window};
                        $w->{requests} == 0 }, 0.2),
   'the 10 s window is empty of the first requests');
$t->request_many($port, [ map { { path => '/',
                                  headers => ['X-Tenant-Id' => "t$_"] } }
                          1 .. 200 ]);
my $j60 = decode_json($t->get($port, '/canary_status')->{content});
my $w60 = $j60->{splits}{checkout}{variants}{canary}{window};
cmp_ok($w60->{'5xx'}, '>', 0, '60 s: the failures are in the window');

my $url10 = "http://127.0.0.1:$port/canary_status$href";
my $dom10 = `$CHROMIUM @flags --user-data-dir=$profile --dump-dom '$url10' 2>/dev/null`;
is($?, 0, 'chromium follows the 10 s link');
$dom10 = decode('UTF-8', $dom10);
like($dom10, qr/<a data-window="10" href="[^"]*" class="on"/,
     'the selector marks 10 s');
my ($rate10) = $dom10 =~ /data-split="checkout".*?data-variant="canary"
                          .*?data-metric="error-rate">([^<]*)</sx;
my ($label10) = $dom10 =~ /data-split="checkout".*?<td>(error rate[^<]*)</s;
is($rate10, '0.00 %', 'the 10 s view: canary error rate 0.00 %');
is($label10, 'error rate (10 s)', 'labelled with its window');
my $r60 = sprintf '%.2f %%', 100 * ($w60->{'5xx'} + $w60->{upstream_errors})
                             / $w60->{requests};
isnt($rate10, $r60, "the 60 s view's canary error rate, $r60, is another");
is($shown{canary}{'error-rate'}, $rate, "the page at 60 s showed $rate");

# nginx reads its arguments whatever their case: ?Window=10 is a 10 s
# view, and the selector says so; its 30 s link asks for 30 s (a
# Window=10 left before window=30 would win), and ?FORMAT=html still
# loads the JSON
my $urlc = "http://127.0.0.1:$port/canary_status?FORMAT=html&Window=10";
my $domc = `$CHROMIUM @flags --user-data-dir=$profile --dump-dom '$urlc' 2>/dev/null`;
is($?, 0, 'chromium loads ?FORMAT=html&Window=10');
$domc = decode('UTF-8', $domc);
like($domc, qr/<div id="error"><\/div>/, 'the page loads its JSON');
like($domc, qr/<td>error rate \(10 s\)</, 'a 10 s view');
like($domc, qr/<a data-window="10" href="[^"]*" class="on"/,
     'and the selector marks 10 s');
my ($href30) = map { text($_) }
               $domc =~ /<a data-window="30" href="([^"]+)"/;
unlike($href30 // '', qr/window=10/i, "its 30 s link: $href30");
(my $json30 = $href30 // '') =~ s/format=html/format=json/i;
my $c30 = $t->get($port, "/canary_status$json30")->{content};
# (a window is as long as the zone is old, here over 10 s and under 30 s)
cmp_ok(eval { decode_json($c30)->{splits}{checkout}{variants}{canary}
              {window}{seconds} } // 0, '>', 10,
       'which nginx serves as more than 10 s');

# the guard keeps its own window whatever the selector says
my $g10 = guard_shown($dom10, 'checkout');
my $cur60 = $j60->{splits}{checkout}{guard}{current};
is($g10->{'guard-window-seconds'}, '60 s', 'the guard still says 60 s');
is($g10->{'guard-canary-rate'},
   sprintf('%.2f %%', $cur60->{canary}{error_rate}),
   "with its own rate, $g10->{'guard-canary-rate'}, not the 10 s one");
cmp_ok($cur60->{canary}{errors}, '>', 0, 'which counts the failures');

# a worker's window read mid-update (its errors counted after its
# requests): 13 errors of 10 requests.  The page shows 100 %, not 130 %
my $torn = decode_json(encode_json($j60));
my $tc = $torn->{splits}{checkout};
@{$tc->{variants}{canary}{window}}{qw(requests 5xx upstream_errors)}
    = (10, 12, 1);
$tc->{guard}{current}{canary} = { %{$tc->{guard}{current}{canary}},
                                  requests => 10, errors => 13,
                                  error_rate => 130 };
open my $fj, '>', $t->prefix . '/fake.json' or die $!;
print $fj encode_json($torn);
close $fj;
my $urlt = "http://127.0.0.1:$port/torn/canary_status?format=html";
my $domt = `$CHROMIUM @flags --user-data-dir=$profile --dump-dom '$urlt' 2>/dev/null`;
$domt = decode('UTF-8', $domt);
my ($ratet) = $domt =~ /data-split="checkout".*?data-variant="canary"
                        .*?data-metric="error-rate">([^<]*)</sx;
is($ratet, '100.00 %', '13 errors of 10 requests: the page says 100.00 %');
my $gt = guard_shown($domt, 'checkout');
is($gt->{'guard-canary'}, '10 errors of 10 requests',
   'the guard line: errors no more than requests');
is($gt->{'guard-canary-rate'}, '100.00 %', 'and 100.00 %');

my $dir = "$FindBin::Bin/../build/artifacts";
make_path($dir);
unlink "$dir/dashboard.png";
system("$CHROMIUM @flags --user-data-dir=$profile.2 --window-size=1200,700 "
       . "--screenshot=$dir/dashboard.png '$url' >/dev/null 2>&1");
is($?, 0, 'chromium --screenshot exits 0');
ok(-s "$dir/dashboard.png" > 10_000, 'a screenshot is kept in '
   . 'build/artifacts/dashboard.png');

$t->allow_log(qr/canary guard tripped|canary_redis/);
$t->stop;

done_testing;
