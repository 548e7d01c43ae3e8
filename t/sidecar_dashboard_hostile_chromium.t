#!/usr/bin/perl

# Story: the rollout page (--listen) shows text others wrote.  A plan's
# stage names are letters, digits, "_", "-" and "." (plan.c), so
# "constructor", "toString" and "__proto__" are stage names too; and
# anyone who may run canary-ctl writes receipts whose reason and actor
# the page shows.  Real headless Chromium renders the page of a real
# rollout whose stages have those names, after an operator's receipt
# with markup in its reason and actor: every stage is drawn with its
# receipts under it (before, the page kept the receipts by stage in a
# plain object: "constructor" found Object's constructor there, and the
# page stopped at "cannot load status.json: ... is not a function"), and
# the markup is text: no element, no handler run (the page's textContent
# stops them; its CSP, which allows only the page's own script by its
# hash, would too).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);

my $CHROMIUM = (grep { -x } '/usr/bin/chromium', '/usr/bin/chromium-browser')[0];
plan skip_all => 'chromium is not installed (scripts/install-deps.sh)'
    unless $CHROMIUM;

my $s = SidecarTest->new(name => 'sidecar-dashboard-hostile');
my $t = $s->t;
my $lp = $t->port('listen');

my $plan = fast_plan();
$plan->{stages} = [
    { name => '__proto__',   weight => 0,   hold => '1s' },
    { name => 'constructor', weight => 5,   hold => '1s' },
    { name => 'toString',    weight => 20,  hold => '5m' },
    { name => 'valueOf',     weight => 100, hold => '0s',
      manual => JSON::PP::true },
];

$s->start;
$s->traffic(clients => 3, rate => 100);
$s->sidecar(plan => $plan, args => ['--listen', "127.0.0.1:$lp"]);

my $status = sub {
    my $res = $t->get($lp, '/status.json', undef, timeout => 5);
    return $res->{status} == 200 ? decode_json($res->{content}) : {};
};

$s->wait_for(sub { ($status->()->{rollout}{stage_name} // '') eq 'toString' },
             40, 'at stage toString')
    or $s->show_log;

my $xss = q{<img src=x onerror="document.body.setAttribute('data-pwned',1)">}
        . q{</script><script>document.body.setAttribute('data-pwned',2)</script>};
{
    local $ENV{CANARY_ACTOR};
    note $s->ctl('pin', 'api', 'canary', 'qa-tenant', '--reason', $xss);
}
$s->wait_for(sub { grep { $_->{operation} eq 'tenants_pinned' }
                        @{$status->()->{receipts} || []} }, 10,
             'the page\'s JSON has the operator\'s receipt');

my $csp = $t->get($lp, '/')->{headers}{'content-security-policy'} // '';
like($csp, qr/script-src 'sha256-[A-Za-z0-9+\/]+=*';/,
     'the CSP allows the page\'s own script by its hash');
unlike($csp, qr/script-src[^;]*'unsafe-inline'/,
       'and no other inline script or handler');

my @flags = ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
             '--no-first-run', '--disable-background-networking',
             '--disable-component-update', '--disable-sync',
             '--virtual-time-budget=4000');
my $url = "http://127.0.0.1:$lp/";
my $profile = $t->prefix . '/chromium';

my $dom = `$CHROMIUM @flags --user-data-dir=$profile --dump-dom '$url' 2>/dev/null`;
is($?, 0, 'chromium --dump-dom exits 0');

my ($error) = $dom =~ m{<div id="error">(.*?)</div>}s;
is($error, '', 'the page shows no error');

like($dom, qr/<li class="done" data-stage="__proto__">/,
     'timeline: __proto__ done');
like($dom, qr/<li class="done" data-stage="constructor">/,
     'timeline: constructor done');
like($dom, qr/<li class="current" data-stage="toString">/,
     'timeline: toString current');
like($dom, qr/<li class="" data-stage="valueOf">/,
     'timeline: valueOf to come');
for my $r ($s->receipts) {
    my $stage = $r->{to_stage} // 'toString';
    like($dom, qr/data-stage="\Q$stage\E">(?:(?!<\/ul>).)*data-receipt="\Q$r->{operation}\E"/s,
         "timeline: $r->{operation} under $stage");
}

like($dom, qr/&lt;img src=x onerror=/, 'the reason\'s markup shown as text');
unlike($dom, qr/<img/i, 'no img element in the page');
unlike($dom, qr/<body[^>]*data-pwned/, 'no handler nor script of the reason ran');
is(scalar(() = $dom =~ /<script/g), 1, 'one script: the page\'s own');

$s->finish;

done_testing;
