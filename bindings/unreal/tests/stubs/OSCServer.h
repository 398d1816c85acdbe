// Stand-ins for the Unreal Engine API used by AffettoComponent, for a compile check only; signatures follow UE 5.x
// (5.3/5.4). Never put these headers in a game: they declare, they do not implement.
//
// OSCServer.h (OSC plugin).

#pragma once

#include "CoreMinimal.h"
#include "OSCMessage.h"
#include "UObject/Object.h"

DECLARE_DYNAMIC_MULTICAST_DELEGATE_ThreeParams(FOSCReceivedMessageEvent, const FOSCMessage&, Message, const FString&,
	IPAddress, int32, Port);

class UOSCServer : public UObject
{
public:
	void Listen();
	void Stop();
	void SetAllowlistClientsEnabled(bool bEnabled);
	void AddAllowlistedClient(const FString& IPAddress);  // UE 5.5 adds ", int32 IPPort = 0"

	FOSCReceivedMessageEvent OnOscMessageReceived;
};
