#!/usr/bin/perl

# Story: an SRE opens the sidecar's rollout page (--listen) in a browser
# on an air-gapped host, in the middle of a rollout.  Real headless
# Chromium loads / from the sidecar; the page needs nothing else (no
# external script, style, font or image: its Content-Security-Policy
# forbids them), fetches /status.json and shows the stages as a
# timeline with the receipts that entered each, the current stage's hold
# and its checks with their p-values and counts, and charts of canary
# against stable (error rate, p50, p95, p99) over the stage, drawn from
# the samples the sidecar kept.  A screenshot is kept in
# build/artifacts/sidecar-dashboard.png.  Then the canary fails one
# request in five and the sidecar rolls back: the page says so, the
# stage is marked stopped, the violation and the rollback are under it,
# and the error chart shows the canary's errors above stable's
# (build/artifacts/sidecar-dashboard-rollback.png).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Path qw(make_path);
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);

my $CHROMIUM = (grep { -x } '/usr/bin/chromium', '/usr/bin/chromium-browser')[0];
plan skip_all => 'chromium is not installed (scripts/install-deps.sh)'
    unless $CHROMIUM;

my $s = SidecarTest->new(name => 'sidecar-dashboard', canary_fault => 20);
my $t = $s->t;
my $lp = $t->port('listen');

# two short stages, then one that holds while the page is looked at
my $plan = fast_plan();
$plan->{stages}[2]{hold} = '5m';

$s->start;
$s->traffic(clients => 3, rate => 100);
$s->sidecar(plan => $plan, args => ['--listen', "127.0.0.1:$lp"]);

my $status = sub {
    my $res = $t->get($lp, '/status.json', undef, timeout => 5);
    return $res->{status} == 200 ? decode_json($res->{content}) : {};
};

my $j;
$s->wait_for(sub {
    $j = $status->();
    ($j->{rollout}{stage_name} // '') eq '20_percent'
        && $j->{samples}{stage} == 2 && @{$j->{samples}{at}} >= 8 }, 40,
    'at stage 20_percent with 8 samples of it')
    or $s->show_log;

# an operator's receipt: it goes under the stage it happened at
note $s->ctl('pin', 'api', 'canary', 'qa-tenant');
$s->wait_for(sub { grep { $_->{operation} eq 'tenants_pinned' }
                        @{$status->()->{receipts}} }, 10,
             'the page\'s JSON has the operator\'s receipt');

my $page = $t->get($lp, '/');
is($page->{status}, 200, 'the page is served');
like($page->{headers}{'content-type'}, qr{^text/html}, 'as text/html');
like($page->{headers}{'content-security-policy'} // '',
     qr/default-src 'none'/, 'which may load nothing from elsewhere');
unlike($page->{content}, qr/<script[^>]+src=|<link[^>]+href=|\@import|url\(/i,
       'self-contained: no external script, stylesheet, font or image');
(my $urls = $page->{content}) =~ s{http://www\.w3\.org/2000/svg}{}g;
unlike($urls, qr{https?://}i,
       'no absolute URL but the SVG namespace name, which is never fetched');

my @flags = ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
             '--no-first-run', '--disable-background-networking',
             '--disable-component-update', '--disable-sync',
             '--virtual-time-budget=4000');
my $url = "http://127.0.0.1:$lp/";
my $profile = $t->prefix . '/chromium';

my $dom = `$CHROMIUM @flags --user-data-dir=$profile --dump-dom '$url' 2>/dev/null`;
is($?, 0, 'chromium --dump-dom exits 0 (no crash, no signal)');
ok(length $dom > 2000, 'chromium rendered the page');

$j = $status->();
my @receipts = $s->receipts;

like($dom, qr/data-field="status">running</, 'the status, running');
like($dom, qr/data-field="stage">20_percent</, 'the stage, 20_percent');
like($dom, qr/data-field="weight">20 %</, 'its weight');
like($dom, qr/data-field="role">leader</, 'this sidecar leads');

# the timeline: stages before done, this one current, the receipts that
# entered each under it
for my $st (qw(canary 5_percent)) {
    like($dom, qr/<li class="done" data-stage="$st">/, "timeline: $st done");
}
like($dom, qr/<li class="current" data-stage="20_percent">/,
     'timeline: 20_percent current');
like($dom, qr/<li class="" data-stage="50_percent">/,
     'timeline: 50_percent to come');
for my $r (@receipts) {
    my $op = $r->{operation};
    my $stage = $r->{to_stage} // '20_percent';
    like($dom, qr/data-stage="\Q$stage\E">(?:(?!<\/ul>).)*data-receipt="\Q$op\E"/s,
         "timeline: $op under $stage");
}
is(scalar(() = $dom =~ /<tr data-receipt="/g), scalar @receipts,
   'the receipts table: one row per receipt in the stream ('
   . scalar(@receipts) . ')');
like($dom, qr/<td>tenants_pinned<\/td><td>operator<\/td>/,
     'the operator\'s receipt, by operator');

# the hold and the checks, with their evidence
like($dom, qr/data-field="hold-progress" data-percent="\d+"/,
     'the hold as a progress bar');
for my $c (@{$j->{judgement}{checks}}) {
    like($dom, qr/<tr data-check="$c->{name}">.*?data-metric="status">(PASS|FAIL|NO_DATA)<.*?data-metric="p-value">[\d.e+-]+</s,
         "check $c->{name}: its status and p-value");
}
like($dom, qr/requests stable \d+, canary \d+; errors stable \d+, canary \d+/,
     'the stage\'s counts');

# the charts: both variants, a line each, from the kept samples
for my $metric (qw(error_percent p50_ms p95_ms p99_ms)) {
    for my $v (qw(stable canary)) {
        like($dom, qr/<svg class="chart" data-metric="$metric".*?<polyline class="$v" data-variant="$v" data-points="(\d+)"/s,
             "chart $metric: $v drawn");
        my ($n) = $dom =~ /<svg class="chart" data-metric="$metric".*?data-variant="$v" data-points="(\d+)"/s;
        cmp_ok($n // 0, '>=', 8, "chart $metric: $v, $n points");
    }
}

my $dir = "$FindBin::Bin/../build/artifacts";
make_path($dir);
unlink "$dir/sidecar-dashboard.png";
system("$CHROMIUM @flags --user-data-dir=$profile.2 --window-size=1200,1100 "
       . "--screenshot=$dir/sidecar-dashboard.png '$url' >/dev/null 2>&1");
is($?, 0, 'chromium --screenshot exits 0');
ok((-s "$dir/sidecar-dashboard.png" // 0) > 10_000, 'a screenshot is kept in '
   . 'build/artifacts/sidecar-dashboard.png');

# ---- a rollback, as the page shows it -------------------------------------

$s->fault('fault_canary', 1);
$s->wait_for(sub { $s->hget('state') eq 'rolled_back' }, 30, 'rolled back')
    or $s->show_log;
sleep 0.5;

$dom = `$CHROMIUM @flags --user-data-dir=$profile --dump-dom '$url' 2>/dev/null`;
is($?, 0, 'chromium --dump-dom exits 0 after the rollback');
like($dom, qr/data-field="status">rolled_back</, 'the status, rolled_back');
like($dom, qr/data-field="stopped">rolled back by the sidecar</,
     'who stopped it');
like($dom, qr/<li class="stopped" data-stage="20_percent">/,
     'timeline: 20_percent stopped');
for my $op (qw(sli_violation_detected rollback_executed)) {
    like($dom, qr/data-stage="20_percent">(?:(?!<\/ul>).)*data-receipt="$op"/s,
         "timeline: $op under 20_percent");
}
like($dom, qr/<tr data-check="error_rate_percent">.*?data-metric="status">FAIL</s,
     'the error check: FAIL');

# the samples of the stage stay after the rollback: canary's errors over
# stable's, drawn higher (a smaller y)
$j = $status->();
my ($cmax) = sort { $b <=> $a } @{$j->{samples}{canary}{error_percent}};
my ($smax) = sort { $b <=> $a } @{$j->{samples}{stable}{error_percent}};
cmp_ok($cmax, '>', $smax, "the samples: canary's error rate up to "
       . sprintf('%.1f%%, stable %.1f%%', $cmax, $smax));
my %top;
for my $v (qw(stable canary)) {
    my ($pts) = $dom =~ /data-metric="error_percent".*?data-variant="$v" data-points="\d+" points="([^"]*)"/s;
    ($top{$v}) = sort { $a <=> $b } map { (split /,/)[1] } split / /, $pts // '';
}
cmp_ok($top{canary} // 1e9, '<', $top{stable} // 0,
       'the error chart: canary drawn above stable');

unlink "$dir/sidecar-dashboard-rollback.png";
system("$CHROMIUM @flags --user-data-dir=$profile.3 --window-size=1200,1100 "
       . "--screenshot=$dir/sidecar-dashboard-rollback.png '$url' "
       . '>/dev/null 2>&1');
ok((-s "$dir/sidecar-dashboard-rollback.png" // 0) > 10_000,
   'a screenshot is kept in build/artifacts/sidecar-dashboard-rollback.png');

$s->finish;

done_testing;
